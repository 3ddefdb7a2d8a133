// Normalizers, pre-tokenizers, decoders and post-processors of tokenizer.json, following the
// Hugging Face tokenizers crate (tokenizers/src/{normalizers,pre_tokenizers,decoders,processors}).
#include "tokenizer/hf_pipeline.h"

#include <limits>

#include "selfrl/core/error.h"
#include "tokenizer/unicode.h"

namespace selfrl::tokenizer::detail {
using ::selfrl::detail::concat;
namespace {

using json = nlohmann::json;

std::string type_of(const json& j, const char* what) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw Error(concat(what, " must be an object with a string \"type\", got ", j.dump().substr(0, 120)));
  return j["type"].get<std::string>();
}

// {"String": "x"} or {"Regex": "..."}
std::unique_ptr<Regex> make_pattern(const json& p, const char* what) {
  if (p.is_object() && p.contains("String")) return std::make_unique<Regex>(p["String"].get<std::string>(), true);
  if (p.is_object() && p.contains("Regex")) return std::make_unique<Regex>(p["Regex"].get<std::string>(), false);
  throw Error(
      concat(what, ": \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}, got ", p.dump().substr(0, 120)));
}

[[noreturn]] void grew_too_much(const char* what, size_t max_bytes) {
  throw Error(concat(what, " made the text longer than the limit of ", max_bytes, " bytes (", kMaxGrowthFactor,
                     " x the input + ", kGrowthSlackBytes, ")"))
      .hint("a Replace/Prepend chain in tokenizer.json that keeps lengthening the text is not a real tokenizer");
}

// A pipeline's "Sequence" component one level deeper than `depth`.
void check_depth(int depth, const char* what) {
  if (depth >= kMaxPipelineDepth)
    throw Error(concat(what, ": Sequence nests deeper than the limit of ", kMaxPipelineDepth, " levels"))
        .hint("real tokenizer.json files nest one Sequence; this file is malformed or hostile");
}

// The array under `key` of a Sequence component.
const json& parts_of(const json& j, const char* key, const char* what) {
  const json& p = j.at(key);
  if (!p.is_array()) throw Error(concat(what, " Sequence: \"", key, "\" must be an array"));
  return p;
}

// A string field that must hold exactly one UTF-8 character (HF: a Rust `char`).
std::string one_char(const json& j, const char* key, const std::string& dflt, const char* what) {
  if (!j.contains(key)) return dflt;
  const json& v = j[key];
  size_t len = 0;
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (!s.empty()) utf8_decode(s, 0, &len);
    if (!s.empty() && len == s.size()) return s;
  }
  throw Error(concat(what, ": \"", key, "\" must be a single character, got ", v.dump().substr(0, 60)));
}

// A non-negative integer field (HF: usize).
size_t count_field(const json& j, const char* key, const char* what) {
  if (!j.contains(key)) return 0;
  const json& v = j[key];
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
    throw Error(concat(what, ": \"", key, "\" must be a non-negative integer, got ", v.dump().substr(0, 60)));
  return v.get<uint64_t>();
}

std::string replace_all(std::string_view text, const Regex& re, const std::string& content,
                        size_t max_bytes = std::string::npos, const char* what = "") {
  std::vector<std::pair<size_t, size_t>> m;
  re.find_all(text, &m);
  if (m.empty()) return std::string(text);
  size_t removed = 0;
  for (auto [b, e] : m) removed += e - b;
  // text.size() - removed + m.size() * content.size(), checked without overflow.
  const size_t kept = text.size() - removed;
  if (max_bytes != std::string::npos &&
      (kept > max_bytes || (!content.empty() && m.size() > (max_bytes - kept) / content.size())))
    grew_too_much(what, max_bytes);
  std::string out;
  out.reserve(kept + m.size() * content.size());
  size_t last = 0;
  for (auto [b, e] : m) {
    out.append(text.substr(last, b - last));
    out += content;
    last = e;
  }
  out.append(text.substr(last));
  return out;
}

// ---- normalizers -----------------------------------------------------------------------

struct NfcNormalizer : Normalizer {
  void apply(std::string* t, size_t max_bytes) const override {
    *t = nfc(*t);
    if (t->size() > max_bytes) grew_too_much("the NFC normalizer", max_bytes);
  }
};
struct SequenceNormalizer : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> parts;
  void apply(std::string* t, size_t max_bytes) const override {
    for (const auto& p : parts) p->apply(t, max_bytes);
  }
};
struct PrependNormalizer : Normalizer {
  std::string prepend;
  void apply(std::string* t, size_t max_bytes) const override {
    if (t->empty()) return;
    if (t->size() > max_bytes || prepend.size() > max_bytes - t->size())
      grew_too_much("the Prepend normalizer", max_bytes);
    t->insert(0, prepend);
  }
};
struct ReplaceNormalizer : Normalizer {
  std::unique_ptr<Regex> pattern;
  std::string content;
  void apply(std::string* t, size_t max_bytes) const override {
    *t = replace_all(*t, *pattern, content, max_bytes, "the Replace normalizer");
  }
};
struct StripNormalizer : Normalizer {
  bool left = true, right = true;
  void apply(std::string* t, size_t) const override {
    size_t b = 0, e = t->size();
    // Only ASCII whitespace at the ends needs care here; Unicode spaces are rare in practice
    // but handled by decoding the boundary characters.
    while (left && b < e) {
      size_t len;
      if (!is_whitespace(utf8_decode(*t, b, &len))) break;
      b += len;
    }
    while (right && e > b) {
      size_t s = e - 1;
      while (s > b && ((*t)[s] & 0xC0) == 0x80) --s;
      size_t len;
      if (!is_whitespace(utf8_decode(*t, s, &len))) break;
      e = s;
    }
    *t = t->substr(b, e - b);
  }
};

// ---- pre-tokenizers --------------------------------------------------------------------

const char* kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void split_pieces(std::vector<std::string>* pieces, const Regex& re, const std::string& behavior, bool invert) {
  std::vector<std::string> out;
  out.reserve(pieces->size() * 2);
  std::vector<std::pair<size_t, size_t>> m;
  for (const auto& p : *pieces) {
    re.find_all(p, &m);
    for (auto [b, e] : split_ranges(p.size(), m, behavior, invert)) out.emplace_back(p, b, e - b);
  }
  pieces->swap(out);
}

struct SequencePre : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  void apply(std::vector<std::string>* p, bool first) const override {
    for (const auto& part : parts) part->apply(p, first);
  }
};
struct SplitPre : PreTokenizer {
  std::unique_ptr<Regex> pattern;
  std::string behavior;
  bool invert = false;
  void apply(std::vector<std::string>* p, bool) const override { split_pieces(p, *pattern, behavior, invert); }
};
// The byte-to-character mapping itself is implicit: the BPE model works on raw bytes.
struct ByteLevelPre : PreTokenizer {
  bool add_prefix_space = false;
  std::unique_ptr<Regex> regex;  // null when use_regex is false
  void apply(std::vector<std::string>* p, bool) const override {
    if (add_prefix_space) {
      for (auto& s : *p)
        if (!s.empty() && s[0] != ' ') s.insert(0, " ");
    }
    if (regex) split_pieces(p, *regex, "Isolated", false);
  }
};
struct MetaspacePre : PreTokenizer {
  std::string replacement = "\xE2\x96\x81";
  std::string prepend_scheme = "always";
  bool split = true;
  void apply(std::vector<std::string>* p, bool first) const override {
    Regex space(" ", true);
    for (auto& s : *p) {
      s = replace_all(s, space, replacement);
      if ((prepend_scheme == "always" || (prepend_scheme == "first" && first)) &&
          s.compare(0, replacement.size(), replacement) != 0)
        s.insert(0, replacement);
    }
    if (split) {
      Regex re(replacement, true);
      split_pieces(p, re, "MergedWithNext", false);
    }
  }
};

// ---- decoders --------------------------------------------------------------------------

struct SequenceDecoder : Decoder {
  std::vector<std::unique_ptr<Decoder>> parts;
  void apply(std::vector<std::string>* t, size_t max_bytes) const override {
    for (const auto& d : parts) d->apply(t, max_bytes);
  }
};
struct ByteLevelDecoder : Decoder {
  void apply(std::vector<std::string>* t, size_t) const override {
    std::string all;
    for (const auto& s : *t) all += s;
    t->assign(1, utf8_lossy(all));
  }
};
struct ReplaceDecoder : Decoder {
  std::unique_ptr<Regex> pattern;
  std::string content;
  void apply(std::vector<std::string>* t, size_t max_bytes) const override {
    size_t total = 0;
    for (auto& s : *t) {
      if (total > max_bytes) grew_too_much("the Replace decoder", max_bytes);
      s = replace_all(s, *pattern, content, max_bytes - total, "the Replace decoder");
      total += s.size();
    }
  }
};
struct ByteFallbackDecoder : Decoder {
  void apply(std::vector<std::string>* t, size_t) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t nbytes = 0;
    auto flush = [&]() {
      if (nbytes == 0) return;
      if (find_invalid_utf8_simple(bytes)) {
        for (size_t i = 0; i < nbytes; ++i) out.emplace_back("\xEF\xBF\xBD");
      } else {
        out.push_back(bytes);
      }
      bytes.clear();
      nbytes = 0;
    };
    for (auto& s : *t) {
      const int b = byte_fallback_value(s);
      if (b >= 0) {
        bytes += static_cast<char>(b);
        ++nbytes;
      } else {
        flush();
        out.push_back(std::move(s));
      }
    }
    flush();
    t->swap(out);
  }
  static bool find_invalid_utf8_simple(const std::string& s) { return utf8_lossy(s) != s; }
};
struct FuseDecoder : Decoder {
  void apply(std::vector<std::string>* t, size_t) const override {
    std::string all;
    for (const auto& s : *t) all += s;
    t->assign(1, all);
  }
};
struct StripDecoder : Decoder {
  std::string content;
  size_t start = 0, stop = 0;
  void apply(std::vector<std::string>* t, size_t) const override {
    for (auto& s : *t) {
      size_t b = 0, e = s.size();
      for (size_t i = 0; i < start && s.compare(b, content.size(), content) == 0; ++i) b += content.size();
      for (size_t i = 0;
           i < stop && e >= b + content.size() && s.compare(e - content.size(), content.size(), content) == 0; ++i)
        e -= content.size();
      s = s.substr(b, e - b);
    }
  }
};
struct MetaspaceDecoder : Decoder {
  std::string replacement = "\xE2\x96\x81";
  bool strip_first = true;
  void apply(std::vector<std::string>* t, size_t) const override {
    Regex re(replacement, true);
    for (size_t i = 0; i < t->size(); ++i) {
      auto& s = (*t)[i];
      s = replace_all(s, re, " ");
      if (i == 0 && strip_first && !s.empty() && s[0] == ' ') s.erase(0, 1);
    }
  }
};

// A special-token id of a post-processor: an integer that fits; the caller checks it is a known id.
int special_id(const json& v, const std::string& what) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0) ||
      v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max()))
    throw Error(what + ": id " + v.dump().substr(0, 40) + " is not a non-negative integer token id");
  return v.get<int>();
}

std::string prepend_scheme_of(const json& j) {
  if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) return j["prepend_scheme"];
  if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean())
    return j["add_prefix_space"].get<bool>() ? "always" : "never";
  return "always";
}

}  // namespace

std::vector<std::pair<size_t, size_t>> split_ranges(size_t size, const std::vector<std::pair<size_t, size_t>>& matches,
                                                    const std::string& behavior, bool invert) {
  // Segments covering [0, size), each flagged as a delimiter match or not.
  struct Seg {
    size_t b, e;
    bool match;
  };
  std::vector<Seg> segs;
  size_t last = 0;
  for (auto [b, e] : matches) {
    if (b > last) segs.push_back({last, b, invert});
    segs.push_back({b, e, !invert});
    last = e;
  }
  if (last < size) segs.push_back({last, size, invert});

  std::vector<std::pair<size_t, size_t>> out;
  if (behavior == "Isolated") {
    for (const auto& s : segs) out.emplace_back(s.b, s.e);
  } else if (behavior == "Removed") {
    for (const auto& s : segs)
      if (!s.match) out.emplace_back(s.b, s.e);
  } else if (behavior == "MergedWithPrevious") {
    bool prev_open = false;
    for (const auto& s : segs) {
      if (s.match && prev_open)
        out.back().second = s.e;
      else
        out.emplace_back(s.b, s.e);
      prev_open = !s.match;
    }
  } else if (behavior == "MergedWithNext") {
    bool pending = false;
    for (const auto& s : segs) {
      if (pending)
        out.back().second = s.e;
      else
        out.emplace_back(s.b, s.e);
      pending = s.match;
    }
  } else if (behavior == "Contiguous") {
    bool prev_match = false;
    for (const auto& s : segs) {
      if (s.match && prev_match)
        out.back().second = s.e;
      else
        out.emplace_back(s.b, s.e);
      prev_match = s.match;
    }
  } else {
    throw Error("unsupported Split behavior \"" + behavior + "\"")
        .hint("supported: Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous");
  }
  return out;
}

int byte_fallback_value(std::string_view s) {
  if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = hex(s[3]), lo = hex(s[4]);
  // Not two hex digits ("<0xZZ>"): an ordinary token, as in HF's ByteFallback decoder.
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::unique_ptr<Normalizer> make_normalizer(const json& j, int depth) {
  const std::string type = type_of(j, "normalizer");
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  if (type == "Sequence") {
    check_depth(depth, "normalizer");
    auto n = std::make_unique<SequenceNormalizer>();
    for (const auto& part : parts_of(j, "normalizers", "normalizer"))
      n->parts.push_back(make_normalizer(part, depth + 1));
    return n;
  }
  if (type == "Prepend") {
    auto n = std::make_unique<PrependNormalizer>();
    n->prepend = j.at("prepend").get<std::string>();
    return n;
  }
  if (type == "Replace") {
    auto n = std::make_unique<ReplaceNormalizer>();
    n->pattern = make_pattern(j.at("pattern"), "Replace normalizer");
    n->content = j.at("content").get<std::string>();
    return n;
  }
  if (type == "Strip") {
    auto n = std::make_unique<StripNormalizer>();
    n->left = j.value("strip_left", true);
    n->right = j.value("strip_right", true);
    return n;
  }
  throw Error("unsupported normalizer type \"" + type + "\"")
      .hint("supported normalizers: NFC, Sequence, Prepend, Replace, Strip");
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, bool* byte_level, int depth) {
  const std::string type = type_of(j, "pre_tokenizer");
  if (type == "Sequence") {
    check_depth(depth, "pre_tokenizer");
    auto p = std::make_unique<SequencePre>();
    for (const auto& part : parts_of(j, "pretokenizers", "pre_tokenizer"))
      p->parts.push_back(make_pre_tokenizer(part, byte_level, depth + 1));
    return p;
  }
  if (type == "Split") {
    auto p = std::make_unique<SplitPre>();
    p->pattern = make_pattern(j.at("pattern"), "Split pre-tokenizer");
    p->behavior = j.value("behavior", std::string("Isolated"));
    p->invert = j.value("invert", false);
    split_ranges(0, {}, p->behavior, false);  // validates the behaviour now
    return p;
  }
  if (type == "ByteLevel") {
    *byte_level = true;
    auto p = std::make_unique<ByteLevelPre>();
    p->add_prefix_space = j.value("add_prefix_space", true);
    if (j.value("use_regex", true)) p->regex = std::make_unique<Regex>(kGpt2Pattern, false);
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<MetaspacePre>();
    p->replacement = one_char(j, "replacement", p->replacement, "Metaspace pre-tokenizer");
    p->prepend_scheme = prepend_scheme_of(j);
    p->split = j.value("split", true);
    return p;
  }
  throw Error("unsupported pre_tokenizer type \"" + type + "\"")
      .hint("supported pre-tokenizers: Sequence, Split, ByteLevel, Metaspace");
}

std::unique_ptr<Decoder> make_decoder(const json& j, int depth) {
  const std::string type = type_of(j, "decoder");
  if (type == "Sequence") {
    check_depth(depth, "decoder");
    auto d = std::make_unique<SequenceDecoder>();
    for (const auto& part : parts_of(j, "decoders", "decoder")) d->parts.push_back(make_decoder(part, depth + 1));
    return d;
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    auto d = std::make_unique<ReplaceDecoder>();
    d->pattern = make_pattern(j.at("pattern"), "Replace decoder");
    d->content = j.at("content").get<std::string>();
    return d;
  }
  if (type == "Strip") {
    auto d = std::make_unique<StripDecoder>();
    if (!j.contains("content")) throw Error("Strip decoder: \"content\" is missing");
    d->content = one_char(j, "content", "", "Strip decoder");
    d->start = count_field(j, "start", "Strip decoder");
    d->stop = count_field(j, "stop", "Strip decoder");
    return d;
  }
  if (type == "Metaspace") {
    auto d = std::make_unique<MetaspaceDecoder>();
    d->replacement = one_char(j, "replacement", d->replacement, "Metaspace decoder");
    d->strip_first = prepend_scheme_of(j) != "never";
    return d;
  }
  throw Error("unsupported decoder type \"" + type + "\"")
      .hint("supported decoders: Sequence, ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace");
}

PostProcessor make_post_processor(const json& j, int depth) {
  PostProcessor pp;
  if (j.is_null()) return pp;
  const std::string type = type_of(j, "post_processor");
  if (type == "ByteLevel") return pp;  // only trims offsets; ids are unchanged
  if (type == "Sequence") {
    check_depth(depth, "post_processor");
    for (const auto& part : parts_of(j, "processors", "post_processor")) {
      PostProcessor p = make_post_processor(part, depth + 1);
      pp.prefix.insert(pp.prefix.end(), p.prefix.begin(), p.prefix.end());
      pp.suffix.insert(pp.suffix.end(), p.suffix.begin(), p.suffix.end());
    }
    return pp;
  }
  if (type == "TemplateProcessing") {
    const json& specials = j.value("special_tokens", json::object());
    bool seen_a = false;
    for (const auto& item : j.at("single")) {
      if (item.contains("Sequence")) {
        seen_a = true;
        continue;
      }
      if (!item.contains("SpecialToken"))
        throw Error("post_processor TemplateProcessing: item " + item.dump() + " is neither SpecialToken nor Sequence");
      const std::string name = item["SpecialToken"].at("id").get<std::string>();
      if (!specials.contains(name))
        throw Error("post_processor TemplateProcessing: special token \"" + name + "\" is not in special_tokens");
      const json& ids = specials[name].at("ids");
      if (!ids.is_array())
        throw Error("post_processor TemplateProcessing: special_tokens[\"" + name + "\"].ids must be an array");
      auto& dst = seen_a ? pp.suffix : pp.prefix;
      for (const auto& id : ids)
        dst.push_back(special_id(id, "post_processor TemplateProcessing: special token \"" + name + "\""));
    }
    return pp;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    pp.prefix.push_back(special_id(j.at("cls").at(1), "post_processor " + type + ": cls"));
    pp.suffix.push_back(special_id(j.at("sep").at(1), "post_processor " + type + ": sep"));
    return pp;
  }
  throw Error("unsupported post_processor type \"" + type + "\"")
      .hint("supported post-processors: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
}

}  // namespace selfrl::tokenizer::detail
