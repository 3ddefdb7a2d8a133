// selfrl::Interrupted: a run stopped at a step boundary because its stop check asked it to
// (Ctrl-C in Python, SIGTERM / SIGUSR1 from a scheduler). What was trained is not lost: when the
// run checkpoints (save_steps > 0) a checkpoint of the step it stopped after is on disk first,
// and resume_from_checkpoint: auto continues from it.
#pragma once

#include <string>

#include "selfrl/core/error.h"

namespace selfrl {

class Interrupted : public Error {
 public:
  explicit Interrupted(std::string message, std::string checkpoint_dir = "")
      : Error(std::move(message)), checkpoint_dir_(std::move(checkpoint_dir)) {}
  // The checkpoint written on the way out ("" when the run does not checkpoint).
  const std::string& checkpoint_dir() const { return checkpoint_dir_; }

 private:
  std::string checkpoint_dir_;
};

}  // namespace selfrl
