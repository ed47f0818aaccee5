#include "data/spam_assassin.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "minnow/error.h"

namespace minnow::data {

std::string_view message_body(std::string_view message) {
  // The header ends at the first empty line, whichever line ending the message uses.
  size_t lf = message.find("\n\n");
  size_t crlf = message.find("\r\n\r\n");
  size_t start = std::string_view::npos;
  if (lf != std::string_view::npos) start = lf + 2;
  if (crlf != std::string_view::npos && (start == std::string_view::npos || crlf + 4 <= start)) {
    start = crlf + 4;
  }
  return start == std::string_view::npos ? std::string_view() : message.substr(start);
}

TextCorpus read_spam_assassin(const std::string& package_dir) {
  namespace fs = std::filesystem;
  const fs::path data = fs::path(package_dir) / "data";
  const std::string list_path = (data / "file_list.json").string();
  nlohmann::json list = nlohmann::json::parse(io::read_file(list_path), nullptr, false);
  if (list.is_discarded() || !list.is_array() || list.empty()) {
    throw Error("'" + list_path +
                "' is not a non-empty JSON array of message paths; reinstall with scripts/setup");
  }
  TextCorpus c;
  c.class_names = {"ham", "spam"};
  c.texts.reserve(list.size());
  for (const nlohmann::json& entry : list) {
    const std::string rel = entry.is_string() ? entry.get<std::string>() : std::string();
    const std::string group = rel.substr(0, rel.find('/'));
    int64_t label = -1;
    if (group == "easy-ham-1" || group == "easy-ham-2" || group == "hard-ham-1") label = 0;
    if (group == "spam-1" || group == "spam-2") label = 1;
    if (label < 0 || rel.find("..") != std::string::npos || rel.find('/') == std::string::npos) {
      throw Error("'" + list_path + "': entry " + entry.dump() +
                  " is not \"<group>/<file>\" with group easy-ham-1, easy-ham-2, hard-ham-1, "
                  "spam-1 or spam-2");
    }
    const std::string message = io::read_file((data / rel).string());
    c.texts.emplace_back(message_body(message));
    c.labels.push_back(label);
  }
  return c;
}

}  // namespace minnow::data
