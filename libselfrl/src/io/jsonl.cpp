// JSON Lines reading and writing (see selfrl/io/jsonl.h).
#include "selfrl/io/jsonl.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"

namespace selfrl::io {

JsonlReader::JsonlReader(std::string path, bool require_objects)
    : path_(std::move(path)), require_objects_(require_objects) {
  if (path_ == "-") {
    in_ = &std::cin;
    path_ = "<stdin>";
    return;
  }
  // Pipes are welcome (process substitution, named pipes); directories are not.
  std::error_code ec;
  if (std::filesystem::is_directory(path_, ec))
    throw Error("JSONL path is a directory, not a file").at(path_).hint("point it at the .jsonl file");
  file_ = std::make_unique<std::ifstream>(path_, std::ios::binary);
  if (!*file_) {
    throw Error(std::string("cannot open JSONL file: ") + std::strerror(errno)).at(path_);
  }
  in_ = file_.get();
}

// std::getline with a bound: an endless stream without a newline ends in an error naming the
// line instead of growing one string until memory runs out.
bool JsonlReader::read_line(std::string& text) {
  text.clear();
  std::streambuf* buf = in_->rdbuf();
  bool any = false;
  for (;;) {
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      if (!any) in_->setstate(std::ios::eofbit);
      return any;
    }
    any = true;
    if (c == '\n') return true;
    if (text.size() >= max_line_bytes_) {
      throw Error("line " + std::to_string(line_ + 1) + " is longer than the limit of " +
                  std::to_string(max_line_bytes_) + " bytes")
          .at(path_)
          .hint("each line holds one JSON record; is this a JSONL file?");
    }
    text.push_back(static_cast<char>(c));
  }
}

bool JsonlReader::next(nlohmann::json& out) {
  std::string text;
  while (read_line(text)) {
    ++line_;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (line_ == 1 && text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // BOM
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    const size_t bad = find_invalid_utf8(text);
    if (bad != std::string::npos) {
      throw Error("invalid UTF-8 at byte " + std::to_string(bad + 1) + " of the line")
          .at(where())
          .hint("re-encode the file as UTF-8");
    }
    try {
      check_json_depth(text, where());
      out = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      std::string msg = e.what();
      const auto pos = msg.find("parse error");
      if (pos != std::string::npos) msg = msg.substr(pos);
      throw Error("invalid JSON: " + msg).at(where()).hint("each line must hold exactly one JSON value");
    } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range.406: a number like 1e400
      throw Error(std::string("invalid JSON: ") + e.what()).at(where());
    }
    if (require_objects_ && !out.is_object()) {
      throw Error(std::string("expected a JSON object, got ") + out.type_name()).at(where());
    }
    return true;
  }
  if (in_->bad()) throw Error("read error").at(path_);
  return false;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path, bool allow_empty) {
  JsonlReader reader(path);
  std::vector<nlohmann::json> out;
  nlohmann::json rec;
  while (reader.next(rec)) out.push_back(std::move(rec));
  if (out.empty() && !allow_empty) {
    throw Error("dataset is empty (no JSON records)").at(path).hint("check the path and the file's contents");
  }
  return out;
}

JsonlWriter::JsonlWriter(const std::string& path) {
  if (path == "-") {
    to_stdout_ = true;
  } else {
    file_ = std::make_unique<AtomicFileWriter>(path);
  }
}

void JsonlWriter::write(const nlohmann::json& record) {
  // Replace invalid UTF-8 (e.g. a half-decoded token) rather than throw in the middle of a run.
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  if (to_stdout_) {
    std::cout << line;
    std::cout.flush();
  } else {
    SELFRL_CHECK(file_ != nullptr, "JsonlWriter: write after close");
    file_->write(line);
  }
  ++count_;
}

void JsonlWriter::close() {
  if (file_) {
    file_->commit();
    file_.reset();
  }
}

}  // namespace selfrl::io
