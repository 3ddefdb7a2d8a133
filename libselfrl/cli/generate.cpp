// `selfrl generate`: G sampled (or greedy) completions for each prompt of a JSONL file, through
// the batched RolloutEngine.
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "command.h"
#include "inputs.h"
#include "selfrl/core/blas.h"
#include "selfrl/tokenizer/tokenizer.h"
#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/generation/rollout_engine.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/model/causal_lm.h"

namespace selfrl::cli {

namespace {

int run_generate(const std::vector<std::string>& args) {
  ArgParser p("selfrl generate",
              "Generate completions for each {\"input_ids\": [...]} or {\"prompt\": \"...\"} line; writes one "
              "{\"completions\": [{\"token_ids\", \"logprobs\", \"finish_reason\"[, \"text\"]}, ...]} line per "
              "input. --temperature 0 is greedy.");
  p.option("--model", "DIR", "Hugging Face model directory (config.json + safetensors)");
  p.option("--in", "FILE", "JSONL of {\"input_ids\": [...]} or {\"prompt\": \"text\"}");
  p.option("--tokenizer", "DIR",
           "tokenizer directory for \"prompt\" lines and completion text (default: --model "
           "when it holds tokenizer files)");
  p.flag("--chat", "render each prompt as a user message through the chat template, with the generation prompt");
  p.option("--chat-format", "NAME", "built-in chat format when the tokenizer has no template: chatml, llama3, plain");
  p.flag("--add-special-tokens",
         "apply the tokenizer's post-processor to prompts (e.g. Llama-2's <s>); not with --chat");
  p.option("--out", "FILE", "output JSONL ('-' = stdout)", "-");
  p.option("--num-samples", "G", "completions per prompt", "1");
  p.option("--max-new-tokens", "N", "maximum tokens per completion", "128");
  p.option("--temperature", "T", "sampling temperature (0 = greedy)", "1.0");
  p.option("--top-p", "P", "nucleus sampling mass (1 = off)", "1.0");
  p.option("--top-k", "K", "keep the K most probable tokens (0 = off)", "0");
  p.option("--min-p", "P", "drop tokens below P x the top probability (0 = off)", "0");
  p.option("--seed", "S", "run seed (prompt i uses derive_seed(S, i))", "0");
  p.option("--batch-size", "N", "rows (prompts x samples) decoded together", "64");
  p.option("--dtype", "D", "float32 | bfloat16 | float16", "float32");
  p.option("--device", "D", "cpu | cuda | cuda:N", "cpu");
  p.option("--threads", "N", "intra-op threads (0 = LibTorch's default)", "0");
  p.flag("--ignore-eos", "do not stop at the model's EOS tokens");
  p.flag("--with-stats", "also write raw_logprobs, entropy and self_certainty per token");
  if (!p.parse(args)) return 0;
  if (const int64_t n = p.get_int_in("--threads", 0, kMaxCliThreads); n > 0) set_intra_op_threads(static_cast<int>(n));
  // Every option is checked before the model is loaded, naming the option.
  generation::SamplingParams sp;
  sp.num_samples = p.get_int_in("--num-samples", 1, 1'000'000);
  sp.max_new_tokens = p.get_int_in("--max-new-tokens", 1, 1'000'000'000);
  sp.temperature = p.get_double_in("--temperature", 0, 1e6);
  sp.top_p = p.get_double_in("--top-p", 0, 1, /*lo_open=*/true);
  sp.top_k = p.get_int_in("--top-k", 0, std::numeric_limits<int32_t>::max());
  sp.min_p = p.get_double_in("--min-p", 0, 1);
  sp.seed = static_cast<uint64_t>(p.get_int("--seed"));
  sp.ignore_eos = p.get_flag("--ignore-eos");
  generation::RolloutEngineOptions eo;
  eo.max_batch_size = p.get_int_in("--batch-size", 1, 1'000'000);
  if (p.has("--chat-format")) check_chat_format_option(p, "--chat-format");
  const std::string dir = p.get("--model");
  auto model = model::CausalLM::from_pretrained(dir, parse_device(p.get("--device")), parse_dtype(p.get("--dtype")));
  const auto& cfg = model->config();

  // The tokenizer: explicit, or the model directory's own when it has one.
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (p.has("--tokenizer")) {
    tok = tokenizer::Tokenizer::from_pretrained(p.get("--tokenizer"));
  } else if (tokenizer::has_tokenizer_files(dir)) {
    tok = tokenizer::Tokenizer::from_pretrained(dir);
  }
  const bool chat = p.get_flag("--chat");
  if ((chat || p.get_flag("--add-special-tokens")) && !tok) {
    throw Error("--chat and --add-special-tokens need a tokenizer, and " + dir + " has none")
        .hint("pass --tokenizer DIR (a directory with tokenizer.json or tokenizer.model)");
  }
  TextEncoder encode_prompt;
  if (tok) {
    const std::string chat_format = p.get_opt("--chat-format").value_or("");
    const bool add_special = p.get_flag("--add-special-tokens");
    encode_prompt = [&, chat_format, chat, add_special](const std::string& text) {
      // A chat template already holds the special tokens (bos included): none are added again.
      const auto ids = chat ? tok->encode(tok->apply_chat_template({{"user", text}}, true, chat_format), false)
                            : tok->encode(text, add_special);
      return std::vector<int64_t>(ids.begin(), ids.end());
    };
  }
  const auto prompts = read_input_ids(p.get("--in"), cfg, 1, cfg.max_position_embeddings - 1, encode_prompt);

  eo.eos_token_ids = model::eos_token_ids(dir, cfg);
  // The output file is opened (and its directory checked) before the generation, not after it.
  io::JsonlWriter writer(p.get("--out"));
  generation::RolloutEngine engine(model, eo);
  const auto rollouts = engine.generate(prompts, sp);

  const bool stats = p.get_flag("--with-stats");
  for (size_t i = 0; i < rollouts.size(); ++i) {
    const auto& r = rollouts[i];
    nlohmann::json completions = nlohmann::json::array();
    for (const auto& c : r.completions) {
      nlohmann::json j = {{"token_ids", c.token_ids},
                          {"logprobs", c.logprobs},
                          {"finish_reason", generation::to_string(c.finish_reason)}};
      if (tok) {
        // Models often have more embedding rows than the tokenizer has tokens (Qwen: 151,936 vs
        // 151,665), and a tokenizer.json may leave ids without a token; like HF tokenizers'
        // decode, ids the tokenizer does not know add nothing to "text" (token_ids keeps them).
        try {
          j["text"] = tok->decode_generated(c.token_ids, true);
        } catch (Error& e) {
          throw e.at(detail::concat(p.get("--in"), ": prompt ", i + 1));
        }
      }
      if (stats) {
        j["raw_logprobs"] = c.raw_logprobs;
        j["entropy"] = c.entropy;
        j["self_certainty"] = c.self_certainty;
      }
      completions.push_back(std::move(j));
    }
    writer.write({{"completions", std::move(completions)}});
  }
  writer.close();
  return 0;
}

CommandRegistrar reg({"generate", "sample completions for prompts with KV-cached batched decoding", run_generate});

}  // namespace
}  // namespace selfrl::cli
