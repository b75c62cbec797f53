// `engram load`: bulk import of episodes from jsonl, csv, npy or fvecs files.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace engram::server {

// flags: db, table (required), create, batch, id-prefix, extension, format, progress.
// positional: the one input file. Returns the exit status; throws std::invalid_argument for
// bad command-line arguments.
int run_load(const std::map<std::string, std::string>& flags,
             const std::vector<std::string>& positional);

} // namespace engram::server
