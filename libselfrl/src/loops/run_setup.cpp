// The steps of starting a run, one job each (RunContext's constructor calls them in order).
#include "loops/run_setup.h"

#include <filesystem>
#include <fstream>

#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"
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
    // check_complete (above, or in find_latest_complete) validated the file's types.
    const auto ts = io::read_json_file((fs::path(resume_dir) / "trainer_state.json").string());
    const auto& extra = ts.at("extra");
    const nlohmann::json lines =
        extra.is_object() ? extra.value("metrics_lines", nlohmann::json(0)) : nlohmann::json(0);
    if (!lines.is_number_integer() || lines.get<int64_t>() < 0)
      throw Error("trainer_state.json: extra.metrics_lines must be a non-negative integer").at(resume_dir);
    rp.metrics_lines = lines.get<int64_t>();
  }
  return rp;
}

// create_directories with an error that says what is in the way (a regular file on the path,
// no permission, a symlink loop) instead of the library's bare filesystem_error.
void create_output_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec && fs::is_directory(dir)) return;
  for (fs::path p = fs::path(dir); !p.empty() && p != p.root_path(); p = p.parent_path()) {
    std::error_code ec2;
    const auto st = fs::status(p, ec2);
    if (fs::exists(st) && !fs::is_directory(st))
      throw Error("cannot create the output directory: " + p.string() + " is a file, not a directory")
          .at("output_dir: " + dir)
          .hint("choose another output_dir");
  }
  throw Error("cannot create the output directory: " + (ec ? ec.message() : std::string("not a directory")))
      .at("output_dir: " + dir)
      .hint("check the path and its permissions");
}

void prepare_output_dir(const TrainConfig& cfg, const ResumePoint& resume) {
  const int64_t keep_lines = resume.metrics_lines;
  const fs::path metrics_file = fs::path(cfg.output_dir) / "metrics.jsonl";
  if (keep_lines >= 0 && fs::exists(metrics_file)) {
    // The lines past the checkpoint are dropped, but the file as it was is kept next to it until
    // the next resume: if restoring the checkpoint then fails, nothing has been lost.
    const std::string before = io::read_text_file(metrics_file.string());
    std::string kept;
    size_t pos = 0;
    for (int64_t i = 0; i < keep_lines && pos < before.size(); ++i) {
      const size_t nl = before.find('\n', pos);
      const size_t end = nl == std::string::npos ? before.size() : nl + 1;
      kept.append(before, pos, end - pos);
      if (nl == std::string::npos) kept += '\n';
      pos = end;
    }
    if (kept.size() != before.size()) {
      io::write_text_file_atomic((fs::path(cfg.output_dir) / "metrics.jsonl.before-resume").string(), before);
      io::write_text_file_atomic(metrics_file.string(), kept);
    }
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
          name.rfind("knowrl_tasks_iter", 0) == 0 || name.rfind("checkpoint-", 0) == 0 || name == "rollouts" ||
          name == "metrics.jsonl.before-resume")
        fs::remove_all(e.path());
    }
  }
  create_output_dir(cfg.output_dir);
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
