// `selfrl eval --model DIR --data FILE.jsonl [--samples k] [--extractor ...] [--out FILE.json]`:
// greedy accuracy against the rows' answer fields, plus maj@k and pass@k with --samples k > 1.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>

#include "command.h"
#include "selfrl/core/blas.h"
#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/core/progress.h"
#include "selfrl/eval/evaluator.h"
#include "selfrl/model/policy.h"
#include "selfrl/io/file_util.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/tokenizer/tokenizer.h"

namespace selfrl::cli {
namespace {

int run_eval(const std::vector<std::string>& args) {
  ArgParser p(
      "selfrl eval",
      "Score a model on a JSONL of {\"prompt\" | \"messages\" | \"input_ids\", \"answer\"} rows: greedy accuracy, "
      "and maj@k / pass@k (unbiased, Chen et al. 2021) from k sampled answers when --samples > 1. Writes JSON.");
  p.option("--model", "DIR", "Hugging Face model directory (config.json, safetensors, tokenizer files)");
  p.option("--data", "FILE", "JSONL with answer fields");
  p.option("--samples", "K", "samples per prompt for maj@k and pass@k (1 = greedy only)", "1");
  p.option("--n", "N", "samples drawn for pass@k (>= K; default K)", "0");
  p.option("--extractor", "E", "last_number | boxed | exact | regex:PATTERN", "last_number");
  p.option("--out", "FILE", "JSON output ('-' = stdout)", "-");
  p.option("--max-new-tokens", "N",
           "maximum tokens per completion (0: 256, or what the model's context leaves after the longest prompt)", "0");
  p.option("--temperature", "T", "temperature of the K samples", "1.0");
  p.option("--top-p", "P", "nucleus mass of the K samples", "1.0");
  p.option("--seed", "S", "sampling seed", "0");
  p.option("--batch-size", "N", "rows (prompts x samples) decoded together", "64");
  p.option("--max-examples", "N", "evaluate the first N rows (0 = all)", "0");
  p.option("--answer-field", "F", "field holding the reference answer", "answer");
  p.option("--device", "D", "cpu | cuda | cuda:N", "cpu");
  p.option("--dtype", "D", "float32 | bfloat16 | float16", "float32");
  p.option("--threads", "N", "intra-op threads (0 = LibTorch's default)", "0");
  p.flag("--chat-template", "wrap prompts as a user message and apply the tokenizer's chat template");
  p.flag("--per-example", "include per-example results in the JSON");
  p.flag("--no-progress", "no progress bar");
  if (!p.parse(args)) return 0;
  if (const int64_t n = p.get_int_in("--threads", 0, kMaxCliThreads); n > 0) set_intra_op_threads(static_cast<int>(n));
  if (p.get_flag("--no-progress")) ProgressBar::set_enabled_override(0);
  const std::string dir = p.get("--model");
  const auto extractor = [&] {
    try {
      return eval::parse_extractor(p.get("--extractor"));
    } catch (Error& e) {
      throw e.at("selfrl eval --extractor");
    }
  }();
  eval::EvalOptions o;
  o.samples = p.get_int_in("--samples", 1, 1'000'000);
  o.n = p.get_int_in("--n", 0, 1'000'000);
  if (o.n != 0 && o.n < o.samples)
    throw Error("--n must be >= --samples (" + std::to_string(o.samples) + "), got " + std::to_string(o.n))
        .at("selfrl eval");
  o.max_new_tokens = p.get_int_in("--max-new-tokens", 0, 1'000'000'000);
  o.temperature = p.get_double_in("--temperature", 0, 1e6);
  o.top_p = p.get_double_in("--top-p", 0, 1, /*lo_open=*/true);
  o.seed = static_cast<uint64_t>(p.get_int("--seed"));
  o.batch_size = p.get_int_in("--batch-size", 1, 1'000'000);
  o.keep_per_example = true;
  data::PromptOptions po;
  po.chat_template = p.get_flag("--chat-template");
  po.answer_field = p.get("--answer-field");
  if (po.answer_field.empty())
    throw Error("option --answer-field is empty").at("selfrl eval").hint("e.g. --answer-field answer");
  po.max_samples = p.get_int_in("--max-examples", 0, std::numeric_limits<int64_t>::max());
  // The options are checked above, before the model is loaded.
  auto model = model::CausalLM::from_pretrained(dir, parse_device(p.get("--device")), parse_dtype(p.get("--dtype")));
  auto tok = tokenizer::Tokenizer::from_pretrained(dir);
  const int64_t context = model->config().max_position_embeddings;
  if (o.max_new_tokens < 0) throw Error("--max-new-tokens must be >= 0, got " + std::to_string(o.max_new_tokens));
  po.max_prompt_length = o.max_new_tokens > 0 ? context - o.max_new_tokens : context - 1;
  if (po.max_prompt_length < 1)
    throw Error("--max-new-tokens " + std::to_string(o.max_new_tokens) +
                " leaves no room for a prompt in the model's " + std::to_string(context) + "-token context")
        .at(dir + "/config.json")
        .hint("lower --max-new-tokens, or leave it out (0) to use what the context allows");
  const auto prompts = data::load_prompts(p.get("--data"), tok.get(), po);
  for (const auto& q : prompts)
    if (!q.answer)
      throw Error("row has no \"" + po.answer_field + "\" field (the reference answer)")
          .at(q.where)
          .hint("add it to every row, or name the field that holds the answer with --answer-field");
  if (o.max_new_tokens == 0) {  // what the context leaves after the longest prompt, at most 256
    size_t longest = 0;
    for (const auto& q : prompts) longest = std::max(longest, q.ids.size());
    o.max_new_tokens = std::min<int64_t>(256, context - static_cast<int64_t>(longest));
  }
  const auto eos = model::stop_ids_of(dir, *model, tok.get());
  const auto r = eval::evaluate(
      model, [&](const std::vector<int64_t>& ids) { return tok->decode_generated(ids); }, prompts, extractor, o, eos);
  auto j = r.to_json();
  j["model"] = dir;
  j["data"] = p.get("--data");
  j["extractor"] = p.get("--extractor");
  if (!p.get_flag("--per-example")) j.erase("examples");
  const std::string text = j.dump(2) + "\n";
  if (p.get("--out") == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    io::write_text_file_atomic(p.get("--out"), text);
  }
  return 0;
}

CommandRegistrar reg({"eval", "score a model: greedy accuracy, maj@k and pass@k against answer fields", run_eval});

}  // namespace
}  // namespace selfrl::cli
