// Head-tail re-balancing for the self-generated training set of ReST-EM (the Matthew effect in
// self-improvement: easy "head" queries yield many correct samples and crowd out the hard "tail"
// ones, which the next model then solves even less often). Three levers, all in rest_em.*:
//   threshold clipping   at most max_per_prompt distinct solutions per query (always on)
//   tail re-sampling     a query solved by fewer than tail_threshold x num_samples of its Grow
//                        samples is "tail" and gets tail_samples more samples (another seed),
//                        so hard queries get more chances to be solved at all
//   repeat padding       balance: pad repeats each solved query's kept solutions in order up
//                        to max_per_prompt, so a query solved once weighs as much in the SFT
//                        set as one solved eight times
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace selfrl::loops {

enum class Balance { kNone, kPad };
Balance parse_balance(const std::string& name);  // none | pad

// Indices into a query's `distinct` kept solutions (in the order they were found) that go into
// the SFT set: the first min(distinct, max_per_prompt); with kPad and distinct ≥ 1, repeated
// round-robin to exactly max_per_prompt. Empty when distinct is 0.
std::vector<size_t> take_solutions(size_t distinct, int64_t max_per_prompt, Balance balance);

// Whether a query with `solved` of its `num_samples` Grow samples kept is a tail query:
// solved < tail_threshold x num_samples (an unsolved query always is, for a threshold > 0).
bool is_tail_query(int64_t solved, int64_t num_samples, double tail_threshold);

}  // namespace selfrl::loops
