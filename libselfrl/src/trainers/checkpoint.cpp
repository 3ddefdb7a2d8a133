// Atomic, resumable training checkpoints (see selfrl/trainers/checkpoint.h).
#include "selfrl/trainers/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#ifdef SELFRL_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/CUDAContext.h>
#endif

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <type_traits>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>

#include "selfrl/core/error.h"
#include "selfrl/model/lora.h"
#include "selfrl/core/logging.h"
#include "selfrl/dist/world.h"
#include "selfrl/io/file_util.h"
#include "selfrl/io/safetensors.h"

namespace selfrl::checkpoint {
namespace fs = std::filesystem;
namespace {

// The key of a parameter in torch::optim's state map: its TensorImpl address, as a string in
// LibTorch 1.x ("0x..." as c10::guts::to_string printed it), as the pointer itself in 2.x.
template <typename Map>
typename Map::key_type optimizer_state_key(const Map&, const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream os;
    os << static_cast<const void*>(p.unsafeGetTensorImpl());
    return os.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

constexpr int kFormatVersion = 1;
constexpr const char* kMarker = "COMPLETE";

const char* const kTokenizerFiles[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",     "vocab.json",
    "merges.txt",     "added_tokens.json",     "generation_config.json",  "chat_template.jinja", "chat_template.json"};

void fsync_path(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open for fsync").at(p.string());
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw Error("fsync failed").at(p.string()).hint("is the disk full or read-only?");
}

// The step of a "checkpoint-N" directory name, or -1.
// Names whose number does not fit (a stray "checkpoint-99999999999999999999999") are not ours.
int64_t step_of(const std::string& name) {
  static const std::regex re("checkpoint-([0-9]{1,18})");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return -1;
  return std::stoll(m[1].str());
}

// Why trainer_state.json cannot be what save() wrote ("" when its fields have the right types).
std::string trainer_state_problem(const nlohmann::json& ts) {
  auto non_negative_int = [&](const nlohmann::json& parent, const char* key) -> std::string {
    if (!parent.is_object() || !parent.contains(key)) return std::string("'") + key + "' is missing";
    const auto& v = parent.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      return std::string("'") + key + "' must be a non-negative integer, got " + v.dump();
    return "";
  };
  if (!ts.is_object()) return "trainer_state.json is not an object";
  if (!ts.contains("format_version") || !ts["format_version"].is_number_integer() ||
      ts["format_version"].get<int64_t>() != kFormatVersion)
    return "trainer_state.json: unknown format_version";
  for (const char* key : {"step", "data_position", "world_size"})
    if (auto why = non_negative_int(ts, key); !why.empty()) return "trainer_state.json: " + why;
  if (ts["world_size"].get<int64_t>() < 1) return "trainer_state.json: 'world_size' must be >= 1";
  if (!ts.contains("extra") || !(ts["extra"].is_object() || ts["extra"].is_null()))
    return "trainer_state.json: 'extra' must be an object";
  if (!ts.contains("optimizer") || !ts["optimizer"].is_object())
    return "trainer_state.json: 'optimizer' must be an object";
  const auto& opt = ts["optimizer"];
  for (const char* key : {"steps_taken", "steps_skipped"})
    if (auto why = non_negative_int(opt, key); !why.empty()) return "trainer_state.json: optimizer: " + why;
  if (!opt.contains("adam_steps") || !opt["adam_steps"].is_object())
    return "trainer_state.json: optimizer.adam_steps must be an object";
  for (const auto& [name, v] : opt["adam_steps"].items())
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      return "trainer_state.json: optimizer.adam_steps['" + name + "'] must be a non-negative integer";
  return "";
}

// Model parameter names for the optimizer's tensors (matched by identity).
std::map<const void*, std::string> param_names(const model::CausalLM& model) {
  std::map<const void*, std::string> names;
  for (const auto& p : model.named_parameters()) names[p.value().unsafeGetTensorImpl()] = p.key();
  return names;
}

torch::Tensor rng_state_cpu() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state_cpu(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state.clone());
}

// One parameter's AdamW state (undefined tensors: no step taken yet).
struct Moments {
  torch::Tensor exp_avg, exp_avg_sq;
  int64_t step = 0;
};

// Every parameter's moments, on rank 0 (the other ranks get what they own). With ZeRO-1 each
// owner broadcasts its share, owner by owner, and rank 0 keeps a CPU copy.
std::vector<Moments> gather_moments(trainers::TrainingOptimizer& optimizer, dist::World* world) {
  const auto& params = optimizer.params();
  auto& state = optimizer.adamw().state();
  std::vector<Moments> out(params.size());
  auto local = [&](size_t i) -> const torch::optim::AdamWParamState* {
    auto st = state.find(optimizer_state_key(state, params[i]));
    return st == state.end() ? nullptr : &static_cast<const torch::optim::AdamWParamState&>(*st->second);
  };
  if (!optimizer.sharded()) {
    for (size_t i = 0; i < params.size(); ++i) {
      if (const auto* s = local(i)) out[i] = {s->exp_avg(), s->exp_avg_sq(), s->step()};
    }
    return out;
  }
  const int me = world->rank();
  std::vector<double> steps(params.size(), 0.0);
  for (size_t i = 0; i < params.size(); ++i) {
    if (optimizer.owner_of(i) == me) {
      if (const auto* s = local(i)) steps[i] = static_cast<double>(s->step());
    }
  }
  steps = world->all_reduce_sum(steps, "checkpoint ZeRO-1 step counts");
  for (int r = 0; r < world->size(); ++r) {
    std::vector<torch::Tensor> parts;
    std::vector<size_t> idx;
    for (size_t i = 0; i < params.size(); ++i) {
      if (optimizer.owner_of(i) != r || steps[i] == 0) continue;
      idx.push_back(i);
      const auto* s = r == me ? local(i) : nullptr;
      parts.push_back(s ? s->exp_avg().reshape({-1}) : torch::zeros({params[i].numel()}, params[i].options()));
      parts.push_back(s ? s->exp_avg_sq().reshape({-1}) : torch::zeros({params[i].numel()}, params[i].options()));
    }
    if (parts.empty()) continue;
    std::vector<torch::Tensor> flat{torch::cat(parts)};
    world->broadcast(flat, r, "checkpoint ZeRO-1 moments of rank " + std::to_string(r));
    if (me != 0) continue;
    const auto host = flat[0].cpu();
    int64_t off = 0;
    for (size_t i : idx) {
      const int64_t n = params[i].numel();
      out[i].exp_avg = host.slice(0, off, off + n).view(params[i].sizes()).clone();
      out[i].exp_avg_sq = host.slice(0, off + n, off + 2 * n).view(params[i].sizes()).clone();
      out[i].step = static_cast<int64_t>(steps[i]);
      off += 2 * n;
    }
  }
  return out;
}

}  // namespace

std::string save(const std::string& output_dir, const model::CausalLM& model, trainers::TrainingOptimizer& optimizer,
                 const TrainerState& state, const SaveOptions& options, dist::World* world) {
  const bool dist = world && world->distributed();
  const int rank = dist ? world->rank() : 0;
  const int size = dist ? world->size() : 1;
  // ---- every rank's RNG state reaches rank 0 --------------------------------------------------
  auto local_rng = rng_state_cpu().contiguous();
  torch::Tensor all_rng =
      dist ? world->all_gather(local_rng, "checkpoint RNG states").view({size, -1}) : local_rng.view({1, -1});
#ifdef SELFRL_WITH_CUDA
  torch::Tensor all_cuda;
  if (torch::cuda::is_available()) {
    auto g = at::cuda::detail::getDefaultCUDAGenerator();
    torch::Tensor s;
    {
      std::lock_guard<std::mutex> lock(g.mutex());
      s = g.get_state().contiguous();
    }
    all_cuda = dist ? world->all_gather(s, "checkpoint CUDA RNG states").view({size, -1}) : s.view({1, -1});
  }
#endif
  const std::vector<Moments> adam = gather_moments(optimizer, world);
  SELFRL_CHECK(state.step >= 0, "checkpoint::save: step must be >= 0, got ", state.step);
  const fs::path final_dir = fs::path(output_dir) / ("checkpoint-" + std::to_string(state.step));
  if (rank == 0) {
    fs::create_directories(output_dir);
    const fs::path tmp = fs::path(output_dir) / (final_dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
    fs::remove_all(tmp);
    fs::create_directories(tmp);

    model.save_pretrained(tmp.string());   // the base (frozen under LoRA)
    if (selfrl::model::has_lora(model)) {  // and the adapters, by CausalLM name
      io::NamedTensors adapters;
      for (const auto& [name, w] : selfrl::model::lora_parameters(model)) adapters.emplace_back(name, w.detach());
      io::save_safetensors((tmp / "adapters.safetensors").string(), adapters);
    }
    if (!options.tokenizer_dir.empty()) {
      for (const char* name : kTokenizerFiles) {
        const fs::path src = fs::path(options.tokenizer_dir) / name;
        if (fs::exists(src)) fs::copy_file(src, tmp / name, fs::copy_options::overwrite_existing);
      }
    }

    // AdamW moments by parameter name; counters and schedule in trainer_state.json.
    const auto names = param_names(model);
    io::NamedTensors moments;
    nlohmann::json adam_steps = nlohmann::json::object();
    const auto& params = optimizer.params();
    for (size_t i = 0; i < params.size(); ++i) {
      auto it = names.find(params[i].unsafeGetTensorImpl());
      SELFRL_CHECK(it != names.end(), "checkpoint::save: an optimizer parameter is not a parameter of the model");
      const auto& m = adam[i];
      if (!m.exp_avg.defined()) continue;  // no step taken yet
      moments.emplace_back(it->second + ".exp_avg", m.exp_avg);
      moments.emplace_back(it->second + ".exp_avg_sq", m.exp_avg_sq);
      adam_steps[it->second] = m.step;
    }
    io::save_safetensors((tmp / "optimizer.safetensors").string(), moments, {{"format", "selfrl-adamw"}});

    io::NamedTensors rng;
    for (int r = 0; r < size; ++r) rng.emplace_back("rank_" + std::to_string(r) + ".cpu", all_rng[r].contiguous());
#ifdef SELFRL_WITH_CUDA
    if (all_cuda.defined())
      for (int r = 0; r < size; ++r) rng.emplace_back("rank_" + std::to_string(r) + ".cuda", all_cuda[r].contiguous());
#endif
    io::save_safetensors((tmp / "rng.safetensors").string(), rng, {{"format", "selfrl-rng"}});

    const auto& sch = optimizer.schedule();
    nlohmann::json ts = {{"format_version", kFormatVersion},
                         {"step", state.step},
                         {"data_position", state.data_position},
                         {"world_size", size},
                         {"extra", state.extra},
                         {"optimizer",
                          {{"steps_taken", optimizer.steps_taken()},
                           {"steps_skipped", optimizer.steps_skipped()},
                           {"adam_steps", adam_steps}}},
                         {"scheduler",
                          {{"type", static_cast<int>(sch.type)},
                           {"learning_rate", sch.learning_rate},
                           {"warmup_steps", sch.warmup_steps},
                           {"total_steps", sch.total_steps},
                           {"next_learning_rate", sch.at(optimizer.steps_taken())}}}};
    io::write_text_file_atomic((tmp / "trainer_state.json").string(), ts.dump(2));

    // Flush every file, then the marker listing them, then the directory itself.
    nlohmann::json files = nlohmann::json::object();
    for (const auto& e : fs::directory_iterator(tmp)) {
      if (!e.is_regular_file()) continue;
      fsync_path(e.path());
      files[e.path().filename().string()] = static_cast<int64_t>(e.file_size());
    }
    io::write_text_file_atomic((tmp / kMarker).string(),
                               nlohmann::json{{"step", state.step}, {"files", files}}.dump(2));
    fsync_path(tmp);
    // A stale directory of the same step (e.g. a corrupt one resume skipped) is replaced.
    fs::path stale;
    if (fs::exists(final_dir)) {
      stale = fs::path(output_dir) / (final_dir.filename().string() + ".stale-" + std::to_string(::getpid()));
      fs::remove_all(stale);
      fs::rename(final_dir, stale);
    }
    fs::rename(tmp, final_dir);
    fsync_path(output_dir);
    if (!stale.empty()) fs::remove_all(stale);

    // Keep the newest K complete checkpoints; drop temporaries of crashed writers.
    std::vector<std::pair<int64_t, fs::path>> complete;
    for (const auto& e : fs::directory_iterator(output_dir)) {
      const std::string name = e.path().filename().string();
      if (!e.is_directory()) continue;
      if (name.rfind("checkpoint-", 0) == 0 && name.find(".tmp-") != std::string::npos) {
        fs::remove_all(e.path());
        continue;
      }
      const int64_t s = step_of(name);
      if (s >= 0 && fs::exists(e.path() / kMarker)) complete.emplace_back(s, e.path());
    }
    if (options.keep_last > 0 && complete.size() > static_cast<size_t>(options.keep_last)) {
      std::sort(complete.begin(), complete.end());
      for (size_t i = 0; i + static_cast<size_t>(options.keep_last) < complete.size(); ++i) {
        if (complete[i].second != final_dir) fs::remove_all(complete[i].second);
      }
    }
    SELFRL_INFO("saved " << final_dir.string());
  }
  if (dist) world->barrier("checkpoint save of step " + std::to_string(state.step));
  return final_dir.string();
}

std::string check_complete(const std::string& dir) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) return "not a directory";
  if (!fs::exists(d / kMarker)) return std::string("no ") + kMarker + " marker (the write did not finish)";
  try {
    const auto marker = io::read_json_file((d / kMarker).string());
    for (const auto& [name, size] : marker.at("files").items()) {
      const fs::path f = d / name;
      if (!fs::exists(f)) return "file " + name + " is missing";
      // A byte count: a float here (1e300) would make get<int64_t> undefined (fuzz finding 8).
      if (!size.is_number_integer() || size.get<int64_t>() < 0)
        return std::string(kMarker) + ": the size of " + name + " is " + size.dump().substr(0, 40) +
               ", not a byte count";
      if (static_cast<int64_t>(fs::file_size(f)) != size.get<int64_t>()) {
        return "file " + name + " has " + std::to_string(fs::file_size(f)) + " bytes, the marker says " +
               std::to_string(size.get<int64_t>());
      }
      if (f.extension() == ".safetensors") io::SafeTensorsFile::open(f.string());
    }
    const auto ts = io::read_json_file((d / "trainer_state.json").string());
    if (auto why = trainer_state_problem(ts); !why.empty()) return why;
    // Contents against each other, from the headers alone (no tensor data is read here).
    const auto weights = io::SafeTensorsCheckpoint::open(d.string());
    std::optional<io::SafeTensorsFile> adapters;
    if (fs::exists(d / "adapters.safetensors"))
      adapters = io::SafeTensorsFile::open((d / "adapters.safetensors").string());
    const auto opt = io::SafeTensorsFile::open((d / "optimizer.safetensors").string());
    for (const auto& [name, v] : ts["optimizer"]["adam_steps"].items()) {
      const io::TensorInfo* param = weights.contains(name)                 ? &weights.info(name)
                                    : adapters && adapters->contains(name) ? &adapters->info(name)
                                                                           : nullptr;
      if (param == nullptr) return "optimizer state for '" + name + "', which is not a tensor of the checkpoint";
      for (const char* moment : {".exp_avg", ".exp_avg_sq"}) {
        if (!opt.contains(name + moment)) return "optimizer.safetensors: '" + name + moment + "' is missing";
        if (opt.info(name + moment).shape != param->shape)
          return "optimizer.safetensors: '" + name + moment + "' has shape " +
                 c10::str(c10::IntArrayRef(opt.info(name + moment).shape)) + ", the parameter has " +
                 c10::str(c10::IntArrayRef(param->shape));
      }
    }
    const auto rng = io::SafeTensorsFile::open((d / "rng.safetensors").string());
    const int64_t rng_bytes = rng_state_cpu().numel();
    for (int64_t r = 0; r < ts["world_size"].get<int64_t>(); ++r) {
      const std::string key = "rank_" + std::to_string(r) + ".cpu";
      if (!rng.contains(key)) return "rng.safetensors: '" + key + "' is missing";
      if (rng.info(key).dtype != io::StDtype::kU8 || rng.info(key).numel() != rng_bytes)
        return "rng.safetensors: '" + key + "' is not a CPU generator state (" + std::to_string(rng_bytes) +
               " bytes of U8)";
    }
  } catch (const std::exception& e) {
    return std::string("unreadable: ") + e.what();
  }
  return "";
}

std::optional<std::string> find_latest_complete(const std::string& output_dir) {
  if (!fs::is_directory(output_dir)) return std::nullopt;
  std::vector<std::pair<int64_t, fs::path>> found;
  for (const auto& e : fs::directory_iterator(output_dir)) {
    if (!e.is_directory()) continue;
    const int64_t s = step_of(e.path().filename().string());
    if (s >= 0) found.emplace_back(s, e.path());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [step, path] : found) {
    const std::string why = check_complete(path.string());
    if (why.empty()) return path.string();
    SELFRL_WARN("resume: skipping " << path.string() << ": " << why);
  }
  return std::nullopt;
}

TrainerState load(const std::string& dir, model::CausalLM& model, trainers::TrainingOptimizer& optimizer,
                  dist::World* world) {
  const std::string why = check_complete(dir);
  if (!why.empty()) throw Error("not a complete checkpoint: " + why).at(dir).hint("resume from another checkpoint");
  const bool dist = world && world->distributed();
  const int rank = dist ? world->rank() : 0;
  const int size = dist ? world->size() : 1;
  const auto ts = io::read_json_file((fs::path(dir) / "trainer_state.json").string());

  // ---- weights --------------------------------------------------------------------------------
  {
    torch::NoGradGuard no_grad;
    const auto ckpt = io::SafeTensorsCheckpoint::open(dir);
    const auto hf = model.hf_state_dict();
    for (const auto& [name, t] : hf) {
      if (!ckpt.contains(name)) throw Error("tensor '" + name + "' is missing").at(dir);
      const auto src = ckpt.tensor(name);
      if (src.sizes() != t.sizes()) {
        throw Error("tensor '" + name + "' has shape " + c10::str(src.sizes()) + ", the model expects " +
                    c10::str(t.sizes()))
            .at(dir)
            .hint("resume with the model configuration the checkpoint was written with");
      }
      t.detach().copy_(src);
    }
    if (selfrl::model::has_lora(model)) {
      const auto file = fs::path(dir) / "adapters.safetensors";
      if (!fs::exists(file))
        throw Error("the run has LoRA adapters but the checkpoint has none (adapters.safetensors)")
            .at(dir)
            .hint("resume with the lora settings the checkpoint was written with");
      const auto st = io::SafeTensorsFile::open(file.string());
      for (auto& [name, w] : selfrl::model::lora_parameters(model)) {
        if (!st.contains(name) || st.tensor(name).sizes() != w.sizes())
          throw Error("adapter tensor '" + name + "' is missing or has another shape")
              .at(file.string())
              .hint("resume with the lora settings the checkpoint was written with");
        w.detach().copy_(st.tensor(name));
      }
    }
  }
  // ---- optimizer --------------------------------------------------------------------------------
  {
    const auto names = param_names(model);
    const auto opt = io::SafeTensorsFile::open((fs::path(dir) / "optimizer.safetensors").string());
    const auto& steps = ts.at("optimizer").at("adam_steps");
    auto& adam_state = optimizer.adamw().state();
    const auto& params = optimizer.params();
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& p = params[i];
      const auto it = names.find(p.unsafeGetTensorImpl());
      SELFRL_CHECK(it != names.end(), "checkpoint::load: an optimizer parameter is not a parameter of the model");
      if (!steps.contains(it->second)) continue;                           // saved before its first step
      if (optimizer.sharded() && optimizer.owner_of(i) != rank) continue;  // ZeRO-1: another rank's share
      auto moment = [&](const std::string& key) {
        const auto t = opt.tensor(key);
        if (t.sizes() != p.sizes())
          throw Error("optimizer moment '" + key + "' has shape " + c10::str(t.sizes()) + ", the parameter has " +
                      c10::str(p.sizes()))
              .at(dir)
              .hint("resume from a checkpoint written by this configuration");
        if (!torch::isfinite(t).all().item<bool>())
          throw Error("optimizer moment '" + key + "' holds NaN or Inf values")
              .at(dir)
              .hint("this checkpoint is corrupt; resume from an earlier one (remove this directory)");
        return t.to(p.device(), p.scalar_type()).clone();
      };
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(steps.at(it->second).get<int64_t>());
      s->exp_avg(moment(it->second + ".exp_avg"));
      s->exp_avg_sq(moment(it->second + ".exp_avg_sq"));
      adam_state[optimizer_state_key(adam_state, p)] = std::move(s);
    }
    optimizer.restore_counters(ts.at("optimizer").at("steps_taken").get<int64_t>(),
                               ts.at("optimizer").at("steps_skipped").get<int64_t>());
  }
  // ---- this rank's RNG ----------------------------------------------------------------------------
  const int saved_size = ts.at("world_size").get<int>();
  if (saved_size != size) {
    SELFRL_WARN("resume: " << dir << " was written by " << saved_size << " rank(s), this run has " << size
                           << "; RNG states are not restored (sampling will differ from an uninterrupted run)");
  } else {
    const auto rng = io::SafeTensorsFile::open((fs::path(dir) / "rng.safetensors").string());
    set_rng_state_cpu(rng.tensor("rank_" + std::to_string(rank) + ".cpu"));
#ifdef SELFRL_WITH_CUDA
    const std::string key = "rank_" + std::to_string(rank) + ".cuda";
    if (torch::cuda::is_available() && rng.contains(key)) {
      auto g = at::cuda::detail::getDefaultCUDAGenerator();
      std::lock_guard<std::mutex> lock(g.mutex());
      g.set_state(rng.tensor(key).clone());
    }
#endif
  }
  if (dist) world->barrier("checkpoint load");
  TrainerState out;
  out.step = ts.at("step").get<int64_t>();
  out.data_position = ts.at("data_position").get<int64_t>();
  out.extra = ts.at("extra");
  return out;
}

}  // namespace selfrl::checkpoint
