// HfTokenizer: loads a tokenizer.json (BPE model) and runs the Hugging Face tokenizers pipeline.
// Order of operations follows tokenizers/src/tokenizer/mod.rs: added tokens are split out first
// (non-normalized ones on the raw text, normalized ones after normalization), every remaining
// segment is normalized, pre-tokenized and merged, then the post-processor adds special tokens.
#include "selfrl/tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/unicode.h"

namespace selfrl::tokenizer {

using json = nlohmann::json;
using namespace detail;
using ::selfrl::detail::concat;

namespace {

struct AddedToken {
  std::string content;
  int id = 0;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// Leftmost-longest matcher over a set of added tokens (HF uses aho-corasick with the same
// semantics). Tokens are bucketed by first byte, longest first.
struct AddedMatcher {
  std::array<std::vector<const AddedToken*>, 256> by_first;
  bool empty = true;
  void add(const AddedToken* t) {
    if (t->content.empty()) return;
    by_first[static_cast<unsigned char>(t->content[0])].push_back(t);
    empty = false;
  }
  void finish() {
    for (auto& v : by_first)
      std::stable_sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->content.size() > b->content.size(); });
  }
};

// Bounds on the ids a tokenizer.json may use. The largest real vocabularies
// have about 262,000 tokens (Gemma 3); every id up to 2^24 - 1 is also exact in a float32.
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;
// Ids below the largest one that no token uses (vocab_size - number of tokens). Hugging Face
// writes contiguous ids; without this bound one token with id 16,000,000 would make every table
// indexed by id (here, and a model's embedding rows) 16 million entries long.
constexpr int64_t kMaxUnusedIds = int64_t{1} << 20;

// A token for an error message: quoted, and cut after 60 bytes (at a character boundary).
std::string quote_token(std::string_view token) {
  if (token.size() <= 60) return "\"" + std::string(token) + "\"";
  size_t cut = 60;
  while (cut > 0 && (static_cast<unsigned char>(token[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + std::string(token.substr(0, cut)) + "\"...";
}

// A token id from the file: a non-negative JSON integer no larger than kMaxTokenId.
int token_id_of(const json& v, const std::string& what) {
  if (!v.is_number_integer())
    throw Error(concat(what, " must be a non-negative integer id, got ", v.dump().substr(0, 40)));
  if (!v.is_number_unsigned() && v.get<int64_t>() < 0)
    throw Error(concat(what, " must be a non-negative integer id, got ", v.get<int64_t>()));
  if (v.get<uint64_t>() > static_cast<uint64_t>(kMaxTokenId))
    throw Error(concat(what, ": id ", v.get<uint64_t>(), " is larger than the limit of ", kMaxTokenId))
        .hint("token ids must be below 2^24; real vocabularies have fewer than 300,000 tokens");
  return static_cast<int>(v.get<uint64_t>());
}

struct Segment {
  std::string text;
  int added_id = -1;  // >= 0: an added token, text unused
};

uint32_t char_before(std::string_view s, size_t i) {
  size_t b = i - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  size_t len;
  return utf8_decode(s, b, &len);
}

// Splits `text` at matches of `m`; lstrip/rstrip swallow whitespace around a match, single_word
// requires non-word characters (or the ends) on both sides.
void split_added(std::string_view text, const AddedMatcher& m, bool first_is_start, std::vector<Segment>* out) {
  size_t seg_start = 0, i = 0;
  while (i < text.size()) {
    const auto& cands = m.by_first[static_cast<unsigned char>(text[i])];
    const AddedToken* hit = nullptr;
    for (const AddedToken* t : cands) {
      if (text.compare(i, t->content.size(), t->content) != 0) continue;
      if (t->single_word) {
        const size_t e = i + t->content.size();
        size_t len;
        if (i > 0 && is_word_char(char_before(text, i))) continue;
        if (e < text.size() && is_word_char(utf8_decode(text, e, &len))) continue;
      }
      hit = t;
      break;
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t b = i, e = i + hit->content.size();
    if (hit->lstrip) {
      while (b > seg_start) {
        const uint32_t cp = char_before(text, b);
        if (!is_whitespace(cp)) break;
        size_t s = b - 1;
        while (s > seg_start && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
        b = s;
      }
    }
    if (hit->rstrip) {
      size_t len;
      while (e < text.size() && is_whitespace(utf8_decode(text, e, &len))) e += len;
    }
    if (b > seg_start) out->push_back({std::string(text.substr(seg_start, b - seg_start)), -1});
    out->push_back({std::string(), hit->id});
    seg_start = i = e;
  }
  if (seg_start < text.size()) out->push_back({std::string(text.substr(seg_start)), -1});
  (void)first_is_start;
}

}  // namespace

struct HfTokenizer::Impl {
  BpeModel model;
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int> added_by_content;
  std::unordered_map<int, const AddedToken*> added_by_id;
  AddedMatcher raw_matcher, normalized_matcher;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Decoder> decoder;
  PostProcessor post;
  int vocab_size = 0;
  std::string source;  // the file, for error messages

  bool known(int id) const {
    return added_by_id.count(id) > 0 ||
           (id >= 0 && id < static_cast<int>(model.pieces.size()) && !model.pieces[id].empty());
  }
  [[noreturn]] void unknown_id(int64_t id) const {
    Error e(id >= 0 && id < vocab_size ? concat("token id ", id, " is not in the vocabulary (vocab_size ", vocab_size,
                                                ", but no token of this tokenizer has id ", id, ")")
                                       : concat("token id ", id, " is not in the vocabulary (size ", vocab_size, ")"));
    throw e.at(source).hint("the ids must come from this tokenizer");
  }

  void encode_text(std::string_view text, bool first, std::vector<int>* ids) const {
    std::string s(text);
    if (normalizer) normalizer->apply(&s, growth_limit(text.size()));
    if (s.empty()) return;
    std::vector<std::string> pieces{std::move(s)};
    if (pre_tokenizer) pre_tokenizer->apply(&pieces, first);
    for (const auto& p : pieces) model.tokenize(p, ids);
  }
};

HfTokenizer::HfTokenizer() : impl_(std::make_unique<Impl>()) {}
HfTokenizer::~HfTokenizer() = default;

std::unique_ptr<HfTokenizer> HfTokenizer::load(const std::string& json_path, TokenizerConfig config) {
  return from_json_string(io::read_text_file(json_path), std::move(config), json_path);
}

std::unique_ptr<HfTokenizer> HfTokenizer::from_json_string(const std::string& text, TokenizerConfig config,
                                                           const std::string& source) {
  // Depth-checked first (copying or dumping a deeply nested value recurses), then parsed; every
  // JSON error names source:line:column.
  json j;
  try {
    j = io::parse_json_text(text, source);
  } catch (Error& e) {
    throw e.hint("the file must be a Hugging Face tokenizer.json");
  }
  std::unique_ptr<HfTokenizer> tok(new HfTokenizer());
  Impl& im = *tok->impl_;
  im.source = source;
  try {
    SELFRL_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), "missing \"model\" object");
    const json& m = j["model"];
    const std::string type = m.value("type", std::string(m.contains("merges") ? "BPE" : ""));
    if (type != "BPE")
      throw Error("model.type \"" + type + "\" is not supported")
          .hint(
              "only BPE tokenizer.json models are implemented (GPT-2, Llama-2/3, Mistral, Qwen); "
              "for a sentencepiece Unigram model use its tokenizer.model");
    if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() != 0.0)
      throw Error("model.dropout is set: BPE dropout is training-only and not supported");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (m.contains(key) && m[key].is_string() && !m[key].get<std::string>().empty())
        throw Error(concat("model.", key, " is not supported (WordPiece-style BPE)"));
    }

    bool byte_level = false;
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null())
      im.pre_tokenizer = make_pre_tokenizer(j["pre_tokenizer"], &byte_level);
    if (j.contains("normalizer") && !j["normalizer"].is_null()) im.normalizer = make_normalizer(j["normalizer"]);
    if (j.contains("decoder") && !j["decoder"].is_null()) im.decoder = make_decoder(j["decoder"]);
    if (j.contains("post_processor")) im.post = make_post_processor(j["post_processor"]);

    BpeModel& bpe = im.model;
    bpe.byte_level = byte_level;
    bpe.byte_fallback = m.value("byte_fallback", false);
    bpe.fuse_unk = m.value("fuse_unk", false);
    bpe.ignore_merges = m.value("ignore_merges", false);
    SELFRL_CHECK(m.contains("vocab") && m["vocab"].is_object(), "model.vocab must be an object {token: id}");
    // Ids are checked (kMaxTokenId, kMaxUnusedIds) before any table indexed by id is sized.
    int max_id = -1, max_vocab_id = -1;
    std::string max_what;
    std::vector<std::pair<std::string, int>> entries;
    entries.reserve(m["vocab"].size());
    for (const auto& [token, idj] : m["vocab"].items()) {
      const std::string what = "model.vocab[" + quote_token(token) + "]";
      const int id = token_id_of(idj, what);
      entries.emplace_back(token, id);
      max_vocab_id = std::max(max_vocab_id, id);
      if (id > max_id) {
        max_id = id;
        max_what = what;
      }
    }
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
      SELFRL_CHECK(j["added_tokens"].is_array(), "added_tokens must be an array");
      size_t k = 0;
      for (const auto& a : j["added_tokens"]) {
        const std::string where = concat("added_tokens[", k++, "]");
        SELFRL_CHECK(a.is_object() && a.contains("content") && a["content"].is_string(), where,
                     " must be an object with a string \"content\"");
        AddedToken t;
        t.content = a["content"].get<std::string>();
        const std::string what = where + " (" + quote_token(t.content) + ").id";
        SELFRL_CHECK(a.contains("id"), what, " is missing");
        t.id = token_id_of(a["id"], what);
        SELFRL_CHECK(io::find_invalid_utf8(t.content) == std::string::npos, where, " has invalid UTF-8 content");
        t.special = a.value("special", false);
        t.lstrip = a.value("lstrip", false);
        t.rstrip = a.value("rstrip", false);
        t.single_word = a.value("single_word", false);
        t.normalized = a.value("normalized", !t.special);
        if (t.id > max_id) {
          max_id = t.id;
          max_what = what;
        }
        im.added.push_back(std::move(t));
      }
    }
    const int64_t defined = static_cast<int64_t>(entries.size() + im.added.size());
    if (max_id + 1 - defined > kMaxUnusedIds)
      throw Error(concat(max_what, " = ", max_id, ", but the file defines only ", defined, " tokens: more than ",
                         kMaxUnusedIds, " ids below it would have no token"))
          .hint("token ids must be (nearly) contiguous from 0, as Hugging Face tokenizers writes them");
    bpe.pieces.resize(static_cast<size_t>(max_vocab_id + 1));
    std::string raw;
    for (auto& [token, id] : entries) {
      std::string key = std::move(token);
      if (byte_level && unicode_to_bytes(key, &raw)) key = raw;
      bpe.pieces[id] = key;
      bpe.vocab.emplace(std::move(key), id);
    }
    if (m.contains("unk_token") && m["unk_token"].is_string()) {
      auto it = m["unk_token"].get<std::string>();
      auto f = bpe.vocab.find(it);
      SELFRL_CHECK(f != bpe.vocab.end(), "model.unk_token ", quote_token(it), " is not in model.vocab");
      bpe.unk_id = f->second;
    }
    SELFRL_CHECK(m.contains("merges") && m["merges"].is_array(), "model.merges must be an array");
    const json& merges = m["merges"];
    bpe.merges.reserve(merges.size() * 2);
    auto id_of = [&](const std::string& t, size_t rank) {
      std::string key = t;
      if (byte_level && unicode_to_bytes(t, &raw)) key = raw;
      auto it = bpe.vocab.find(key);
      if (it == bpe.vocab.end())
        throw Error(concat("model.merges[", rank, "]: token ", quote_token(t), " is not in model.vocab"));
      return it->second;
    };
    for (size_t r = 0; r < merges.size(); ++r) {
      const json& mj = merges[r];
      std::string a, b;
      if (mj.is_string()) {
        const std::string s = mj.get<std::string>();
        const size_t sp = s.find(' ', 1);
        if (sp == std::string::npos)
          throw Error(concat("model.merges[", r, "] = ", quote_token(s), " is not \"left right\""));
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
        a = mj[0].get<std::string>();
        b = mj[1].get<std::string>();
      } else {
        throw Error(concat("model.merges[", r, "] must be \"a b\" or [\"a\", \"b\"], got ", mj.dump().substr(0, 120)));
      }
      const int ia = id_of(a, r), ib = id_of(b, r);
      const int merged = id_of(a + b, r);
      const uint64_t key = (static_cast<uint64_t>(ia) << 32) | static_cast<uint32_t>(ib);
      bpe.merges.emplace(key, std::make_pair(static_cast<int>(r), merged));  // first rank wins
    }
    bpe.index_bytes();

    for (const auto& t : im.added) {
      im.added_by_content[t.content] = t.id;
      im.added_by_id[t.id] = &t;
      (t.normalized && im.normalizer ? im.normalized_matcher : im.raw_matcher).add(&t);
    }
    im.raw_matcher.finish();
    im.normalized_matcher.finish();
    im.vocab_size = max_id + 1;
    for (const auto* ids : {&im.post.prefix, &im.post.suffix})
      for (int id : *ids)
        if (!im.known(id))
          throw Error(concat("post_processor: special token id ", id, " is not in the vocabulary"))
              .hint("the post-processor may only add ids of model.vocab or added_tokens");
  } catch (Error& e) {
    throw e.at(source);
  } catch (const json::exception& e) {
    throw Error(concat("unexpected structure: ", e.what()))
        .at(source)
        .hint("compare with a tokenizer.json saved by Hugging Face tokenizers");
  }
  tok->config_ = std::move(config);
  tok->resolve_special_ids();
  return tok;
}

std::vector<int> HfTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const size_t bad = io::find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    throw Error(concat("text is not valid UTF-8 at byte ", bad)).hint("decode the input as UTF-8 before tokenizing");
  const Impl& im = *impl_;
  std::vector<int> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = im.post.prefix;
  std::vector<Segment> segs;
  if (im.raw_matcher.empty)
    segs.push_back({std::string(text), -1});
  else
    split_added(text, im.raw_matcher, true, &segs);
  bool first = true;
  for (auto& seg : segs) {
    if (seg.added_id >= 0) {
      ids.push_back(seg.added_id);
    } else if (!im.normalized_matcher.empty) {
      // Normalized added tokens are matched on the normalized text.
      std::string s = seg.text;
      im.normalizer->apply(&s, growth_limit(seg.text.size()));
      std::vector<Segment> inner;
      split_added(s, im.normalized_matcher, first, &inner);
      for (auto& in : inner) {
        if (in.added_id >= 0) {
          ids.push_back(in.added_id);
        } else {
          std::vector<std::string> pieces{std::move(in.text)};
          if (im.pre_tokenizer) im.pre_tokenizer->apply(&pieces, first);
          for (const auto& p : pieces) im.model.tokenize(p, &ids);
        }
      }
    } else {
      im.encode_text(seg.text, first, &ids);
    }
    first = false;
  }
  if (add_special_tokens) ids.insert(ids.end(), im.post.suffix.begin(), im.post.suffix.end());
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int>& ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    auto it = im.added_by_id.find(id);
    if (it != im.added_by_id.end()) {
      if (skip_special_tokens && it->second->special) continue;
      tokens.push_back(it->second->content);
      continue;
    }
    if (id < 0 || id >= static_cast<int>(im.model.pieces.size()) || im.model.pieces[id].empty()) im.unknown_id(id);
    tokens.push_back(im.model.pieces[id]);
  }
  std::string out;
  if (im.decoder) {
    size_t bytes = 0;
    for (const auto& t : tokens) bytes += t.size();
    im.decoder->apply(&tokens, growth_limit(bytes));
    for (const auto& t : tokens) out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
  }
  if (config_.clean_up_tokenization_spaces) {
    // transformers PreTrainedTokenizerBase.clean_up_tokenization
    static const std::pair<const char*, const char*> kRules[] = {
        {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kRules) {
      const std::string f(from), t(to);
      std::string res;
      size_t last = 0;
      for (size_t p = out.find(f); p != std::string::npos; p = out.find(f, last)) {
        res.append(out, last, p - last);
        res += t;
        last = p + f.size();
      }
      res.append(out, last, std::string::npos);
      out.swap(res);
    }
  }
  return out;
}

std::string HfTokenizer::id_to_token(int id) const {
  const Impl& im = *impl_;
  auto it = im.added_by_id.find(id);
  if (it != im.added_by_id.end()) return it->second->content;
  if (id < 0 || id >= static_cast<int>(im.model.pieces.size()) || im.model.pieces[id].empty()) im.unknown_id(id);
  const std::string& p = im.model.pieces[id];
  if (!im.model.byte_level) return p;
  std::string s;
  for (unsigned char b : p) s += byte_to_unicode(b);
  return s;
}

std::optional<int> HfTokenizer::token_to_id(std::string_view token) const {
  const Impl& im = *impl_;
  auto a = im.added_by_content.find(std::string(token));
  if (a != im.added_by_content.end()) return a->second;
  std::string key(token), raw;
  if (im.model.byte_level && unicode_to_bytes(token, &raw)) key = raw;
  auto it = im.model.vocab.find(key);
  if (it == im.model.vocab.end()) return std::nullopt;
  return it->second;
}

int HfTokenizer::vocab_size() const { return impl_->vocab_size; }

bool HfTokenizer::is_special(int id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && it->second->special;
}

}  // namespace selfrl::tokenizer
