// Policy (see selfrl/model/policy.h).
#include "selfrl/model/policy.h"

#include <algorithm>

namespace selfrl::model {

Policy Policy::from_pretrained(const std::string& dir, torch::Device device, torch::ScalarType dtype) {
  return with_files_of(CausalLM::from_pretrained(dir, device, dtype), dir);
}

Policy Policy::with_files_of(std::shared_ptr<CausalLM> model, const std::string& dir) {
  Policy p;
  p.model = std::move(model);
  p.tokenizer = tokenizer::Tokenizer::from_pretrained(dir);
  p.eos_token_ids = stop_ids_of(dir, *p.model, p.tokenizer.get());
  return p;
}

std::string Policy::decode(const std::vector<int64_t>& ids) const {
  if (!tokenizer) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
    return s;
  }
  return tokenizer->decode_generated(ids);
}

std::vector<int64_t> Policy::stop_ids() const {
  if (!eos_token_ids.empty() || !model) return eos_token_ids;
  return model->config().eos_token_ids;
}

std::vector<int64_t> stop_ids_of(const std::string& dir, const CausalLM& model, const tokenizer::Tokenizer* tokenizer) {
  auto ids = eos_token_ids(dir, model.config());
  if (tokenizer) {
    if (auto e = tokenizer->eos_id(); e && std::find(ids.begin(), ids.end(), *e) == ids.end()) ids.push_back(*e);
  }
  return ids;
}

}  // namespace selfrl::model
