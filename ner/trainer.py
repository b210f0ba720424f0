"""The Trainer train.py uses: transformers' own, evaluating in dataset order."""

from torch.utils.data import SequentialSampler
from transformers import Trainer


class InOrderTrainer(Trainer):
    """Evaluates and predicts in dataset order, which train.py relies on to pair predictions with
    sentences. (With train_sampling_strategy: group_by_length, transformers 5 length-groups
    evaluation batches too, and predictions come back shuffled.)"""

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None:
            return None
        # transformers' own choice when not grouping: sequential here, its ordered default when distributed
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None
