// The steps of starting a run, one job each (RunContext's constructor calls them in order).
#include "loops/run_setup.h"

#include <filesystem>
#include <fstream>

#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/trainers/checkpoint.h"

namespace fs = std::filesystem;

namespace selfrl::loops {

ResumePoint find_resume_point(const TrainConfig& cfg, bool is_main) {
  ResumePoint rp;
  std::string& resume_dir = rp.dir;
  // resume_from_checkpoint: every rank looks (output_dir is shared); partial or corrupt
  // checkpoints are skipped with a warning by find_latest_complete.
  const std::string& rfc = cfg.resume_from_checkpoint;
  if (rfc == "auto") {
    if (fs::exists(cfg.output_dir)) resume_dir = checkpoint::find_latest_complete(cfg.output_dir).value_or("");
    if (resume_dir.empty() && is_main)
      SELFRL_INFO("resume_from_checkpoint: auto: no complete checkpoint in " << cfg.output_dir << ", starting fresh");
  } else if (!rfc.empty() && rfc != "never") {
    if (const auto why = checkpoint::check_complete(rfc); !why.empty())
      throw Error("resume_from_checkpoint: " + rfc + " is not a complete checkpoint: " + why).at(cfg.recipe_path);
    resume_dir = rfc;
  }
  if (!resume_dir.empty()) {
    std::ifstream in(fs::path(resume_dir) / "trainer_state.json");
    const auto ts = nlohmann::json::parse(in);
    rp.metrics_lines = ts.at("extra").value("metrics_lines", int64_t{0});
  }
  return rp;
}

void prepare_output_dir(const TrainConfig& cfg, const ResumePoint& resume) {
  const int64_t keep_lines = resume.metrics_lines;
  const fs::path metrics_file = fs::path(cfg.output_dir) / "metrics.jsonl";
  if (keep_lines >= 0 && fs::exists(metrics_file)) {
    std::ifstream in(metrics_file);
    std::string kept, line;
    for (int64_t i = 0; i < keep_lines && std::getline(in, line); ++i) kept += line + "\n";
    in.close();
    std::ofstream(metrics_file, std::ios::trunc) << kept;
  } else if (fs::exists(metrics_file)) {
    // An earlier run's metrics would mix with this one's: refuse, or clear with overwrite_output_dir.
    if (!cfg.overwrite_output_dir)
      throw Error("output_dir already holds a run (metrics.jsonl)")
          .at(cfg.output_dir)
          .hint(
              "choose another output_dir, set overwrite_output_dir=true to replace it, or "
              "resume_from_checkpoint=auto to continue it");
    for (const auto& e : fs::directory_iterator(cfg.output_dir)) {
      const std::string name = e.path().filename().string();
      if (name == "metrics.jsonl" || name == "final" || name.rfind("events.out.tfevents", 0) == 0 ||
          name.rfind("knowrl_tasks_iter", 0) == 0 || name.rfind("checkpoint-", 0) == 0 || name == "rollouts")
        fs::remove_all(e.path());
    }
  }
  fs::create_directories(cfg.output_dir);
}

Policy load_policy(const TrainConfig& cfg, std::shared_ptr<model::CausalLM> given) {
  std::shared_ptr<model::CausalLM> m;
  if (given) {
    if (given->device() != parse_device(cfg.device))
      throw Error("the model given to the run is on " + given->device().str() + " but device is " + cfg.device)
          .at(cfg.recipe_path)
          .hint("move the model with .to(device) or set device to match");
    m = given;
  } else {
    m = model::CausalLM::from_pretrained(cfg.model_dir, parse_device(cfg.device), parse_dtype(cfg.dtype));
  }
  return Policy::with_files_of(std::move(m), cfg.model_dir);
}

void load_datasets(const TrainConfig& cfg, const Policy& policy, std::vector<data::Prompt>& train,
                   std::vector<data::Prompt>& eval_set) {
  const int64_t ctx_len = policy.model->config().max_position_embeddings;
  if (cfg.sampling.max_new_tokens >= ctx_len)
    throw Error("max_completion_length " + std::to_string(cfg.sampling.max_new_tokens) +
                " leaves no room for a prompt in the " + std::to_string(ctx_len) +
                "-token context (max_position_embeddings)")
        .at(cfg.recipe_path)
        .hint("lower max_completion_length");
  data::PromptOptions po = cfg.prompt_options;
  po.max_prompt_length = ctx_len - cfg.sampling.max_new_tokens;
  if (!cfg.train_file.empty() && cfg.kind != "knowrl")
    train = data::load_prompts(cfg.train_file, policy.tokenizer.get(), po);
  if (!cfg.eval_file.empty()) {
    po.max_samples = cfg.eval.max_samples;
    if (cfg.kind != "knowrl") eval_set = data::load_prompts(cfg.eval_file, policy.tokenizer.get(), po);
  }
}

}  // namespace selfrl::loops
