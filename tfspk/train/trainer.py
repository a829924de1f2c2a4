"""The x-vector trainer: a custom training step under tf.function, validation, LR policy, checkpoints.

One training step (per replica, see :func:`Trainer._replica_step`)::

    emb      = model(feats)["embedding_b"]                     # the input of the loss ([Liu2019])
    emb, y   = gather(emb), gather(labels)                     # global batch, several replicas only
    L        = head(emb, y, step, margin=True)[0] + sum(aux(emb, y, head)) + l2 + model.losses
    grads    = d (L / num_replicas) / d theta                  # summed over replicas by the optimizer

Every replica computes the loss of the *global* batch on the gathered embeddings, so the summed
gradient equals the single-device gradient for every loss, including batch-wise ones (Adaptive
Rectangle: the non-target set and mean target similarity span the whole batch) and auxiliary
losses; gathering 64 x 512 floats costs far less than the network. The L2 term
``weight_decay/2 * sum ||kernel||^2`` is part of L, so it is divided by the replica count too and
counted once. Batch normalisation is synchronised across replicas (``sync_batchnorm``, default
true): each BN layer uses the moments of the global batch, which is what makes multi-replica
training equal single-device training up to float noise.

The global step is ``optimizer.iterations``: it is in the checkpoint, the margin annealing and the dropout
masks (:class:`tfspk.nnet.blocks.StepDropout`) read it,
and the sampler starts from it, so a resumed run continues the exact sequence of an uninterrupted one.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfspk.errors import ToolError
from tfspk.io.atomic import atomic_path
from tfspk.metrics.detection import eer_from_arrays
from tfspk.nnet.blocks import bind_step_dropout
from tfspk.train import components, distribute, lr as lr_mod, precision, schedule
from tfspk.train.config import TrainConfig
from tfspk.train import finetune


class Trainer:
    """Holds the strategy, model, loss, optimizer and checkpoint of one experiment."""

    def __init__(self, config: TrainConfig, feat_dim: int, num_classes: int, exp_dir: str | None = None,
                 strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.feat_dim = feat_dim
        self.num_classes = num_classes
        self.exp_dir = exp_dir
        self.strategy = strategy or distribute.make_strategy(config.strategy)
        self.num_replicas = self.strategy.num_replicas_in_sync
        if config.data.speakers_per_batch % self.num_replicas:
            raise ToolError(f"data.speakers_per_batch={config.data.speakers_per_batch} must be divisible by "
                            f"the number of replicas ({self.num_replicas})")
        import keras
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            with precision.policy(config.mixed_precision):  # the network only: the loss stays float32
                self.model = components.build_network(config, feat_dim)
            embedding_dim = int(self.model.output["embedding_b"].shape[-1])
            self.head = components.build_head(config, num_classes, embedding_dim)
            self.head.margin_warmup_steps = lr_mod.margin_warmup_steps(config.schedule)
            self.auxes = components.build_auxes(config)
            self._build_head_and_auxes(embedding_dim)
            self.optimizer = precision.wrap_optimizer(self._make_optimizer(), config.mixed_precision,
                                                      config.optimizer.clip_norm)
            self.variables = self._trainable_variables()
            self.optimizer.build(self.variables)
            # dropout masks: a function of (seed, global step), so exact after a resume (no RNG state)
            bind_step_dropout(self.model, config.seed, self.optimizer.iterations)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.best_loss = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best_valid_loss")
            self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs")
            self.reductions = tf.Variable(0, dtype=tf.int64, trainable=False, name="reductions_without_improvement")
            self.stopped = tf.Variable(0, dtype=tf.int64, trainable=False, name="stopped_early")
        if self.num_replicas > 1 and config.sync_batchnorm:
            self._synchronise_batchnorm()
        self.decayed = [v for v in self.variables if _is_kernel(v)]
        self.freeze = finetune.GradientFreeze(config, self.model, self.variables)
        aux_tracking = {f"aux_{entry.name}": aux for entry, aux in zip(config.aux, self.auxes)}
        self.checkpoint = tf.train.Checkpoint(model=self.model, head=self.head, optimizer=self.optimizer,
                                              epoch=self.epoch, best_loss=self.best_loss,
                                              bad_epochs=self.bad_epochs, reductions=self.reductions,
                                              stopped=self.stopped,
                                              **aux_tracking)
        # autograph off: the step's control flow is plain Python over static lists, and converting the
        # Keras/loss code made tracing several times slower.
        # Every tf.function has a fixed input signature with an unknown time axis, so each is traced
        # once. Without it, the first batch of a process is traced for its own length and later ones
        # for a generic length; the two graphs differ in the last float bits (Grappler folds and
        # kernels chosen for static shapes), so a resumed run, whose first traced length differs from
        # the uninterrupted run's, drifted away from it. The training step gets its
        # signature from the input iterator (see :meth:`batches`).
        feats_spec = tf.TensorSpec([None, None, feat_dim], tf.float32)
        # (Re)built by batches() with the input iterator's spec (needed for distributed values).
        self._train_step = tf.function(self._distributed_step, jit_compile=config.jit_compile, autograph=False,
                                       input_signature=[(feats_spec, tf.TensorSpec([None], tf.int32))])
        self._eval_fn = tf.function(self._evaluate_batch, autograph=False,
                                    input_signature=[feats_spec, tf.TensorSpec([None], tf.int32)])
        self._embed_fn = tf.function(lambda feats: self.model(feats, training=False)["embedding_a"],
                                     input_signature=[feats_spec])

    # ------------------------------------------------------------------ construction
    def _build_head_and_auxes(self, embedding_dim: int) -> None:
        """Create every variable now (inside the strategy scope), not lazily inside tf.function."""
        probe = tf.random.stateless_normal((2, embedding_dim), seed=[0, 0])
        labels = tf.constant([0, 1], tf.int32)
        step = tf.constant(0, tf.int64)
        self.head(probe, labels, step, margin=False)
        for aux in self.auxes:
            aux(probe, labels, self.head)

    def _make_optimizer(self):
        import keras
        opt = self.config.optimizer
        if opt.name == "sgd":
            return keras.optimizers.SGD(learning_rate=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov)
        return keras.optimizers.Adam(learning_rate=opt.lr, beta_1=opt.beta_1, beta_2=opt.beta_2,
                                     epsilon=opt.epsilon)

    def _trainable_variables(self) -> list:
        variables = list(self.model.trainable_variables) + list(self.head.trainable_variables)
        for aux in self.auxes:
            variables += list(getattr(aux, "trainable_variables", []))
        unique, seen = [], set()
        for v in variables:
            if id(v) not in seen:
                seen.add(id(v))
                unique.append(v)
        return unique

    def _synchronise_batchnorm(self) -> None:
        import keras
        for layer in self.model._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True

    # ------------------------------------------------------------------ the step
    def _losses(self, feats, labels, training: bool, margin: bool):
        outputs = self.model(feats, training=training)
        embeddings = tf.cast(outputs["embedding_b"], tf.float32)  # the loss in float32 (mixed precision)
        if self.num_replicas > 1 and training:
            embeddings = _gather_replicas(embeddings)
            labels = tf.cast(tf.round(_gather_replicas(tf.cast(labels, tf.float32))), tf.int32)
        step = tf.cast(self.optimizer.iterations, tf.int64)
        main, logits = self.head(embeddings, labels, step, margin=margin)
        aux_total = tf.constant(0.0)
        for aux in self.auxes:
            aux_total += aux(embeddings, labels, self.head)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels),
                                          tf.float32))
        return main, aux_total, accuracy, tf.shape(labels)[0]

    def _l2_term(self):
        """weight_decay/2 * sum of squared kernels (network and class weights), plus model.losses."""
        total = tf.constant(0.0)
        if self.config.optimizer.weight_decay > 0 and self.decayed:
            total += 0.5 * self.config.optimizer.weight_decay * tf.add_n([tf.reduce_sum(tf.square(v))
                                                                          for v in self.decayed])
        if self.model.losses:
            total += tf.add_n(self.model.losses)
        return total

    def _replica_step(self, feats, labels):
        with tf.GradientTape() as tape:
            main, aux_total, accuracy, batch = self._losses(feats, labels, training=True, margin=True)
            l2 = self._l2_term()
            total = main + aux_total + l2
            scaled = total / self.num_replicas
            if self.config.mixed_precision == "mixed_float16":
                scaled = self.optimizer.scale_loss(scaled)  # unscaled again by LossScaleOptimizer.apply
        grads = self.freeze(tape.gradient(scaled, self.variables), self.optimizer.iterations)
        grads = self._clip(grads)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        frames = tf.cast(batch, tf.float32) * tf.cast(tf.shape(feats)[1], tf.float32)
        return {"loss": main, "aux": aux_total, "l2": l2, "total": total, "accuracy": accuracy, "frames": frames}

    def _clip(self, grads):
        """Clip the global norm of the summed (global-batch) gradient, then hand the optimizer the
        per-replica share again (it sums over replicas itself)."""
        clip = self.config.optimizer.clip_norm
        if clip <= 0:
            return grads
        if self.num_replicas > 1:
            context = tf.distribute.get_replica_context()
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            grads, _ = tf.clip_by_global_norm(grads, clip)
            return [g / self.num_replicas for g in grads]
        grads, _ = tf.clip_by_global_norm(grads, clip)
        return grads

    def _distributed_step(self, batch):
        feats, labels = batch
        per_replica = self.strategy.run(self._replica_step, args=(feats, labels))
        # Every replica computed the same global-batch values; MEAN just picks them up.
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica.items()}

    def train_step(self, distributed_batch) -> dict:
        return {k: float(v) for k, v in self._train_step(distributed_batch).items()}

    def batches(self, source, start_step: int):
        """Iterator of (distributed) training batches of the input ``source`` (a
        :class:`tfspk.train.inputs.TrainingInput`) from ``start_step`` on; also builds the training step's
        tf.function with the iterator's element spec (time axis unknown) as its only signature."""
        if self.num_replicas == 1:
            iterator = iter(source.dataset(start_step))
        elif not source.supports_replicas:
            raise ToolError(f"data.source {self.config.data.source} trains on one device only for now; use "
                            "strategy: one (or the feats source for several replicas)")
        else:
            iterator = iter(self.strategy.distribute_datasets_from_function(
                lambda context: source.dataset(start_step, context)))
        self._train_step = tf.function(self._distributed_step, jit_compile=self.config.jit_compile,
                                       autograph=False, input_signature=[iterator.element_spec])
        return iterator

    # ------------------------------------------------------------------ validation
    def _evaluate_batch(self, feats, labels):
        main, _, accuracy, _ = self._losses(feats, labels, training=False, margin=False)
        return main, accuracy

    def validation_loss(self, batches) -> tuple[float, float]:
        """Batch-size-weighted mean loss and accuracy with every margin off (margin=False)."""
        total_loss = total_acc = count = 0.0
        for feats, labels in batches:
            loss, acc = self._eval_fn(tf.constant(feats), tf.constant(labels, tf.int32))
            total_loss += float(loss) * len(labels)
            total_acc += float(acc) * len(labels)
            count += len(labels)
        if not math.isfinite(total_loss):
            # Not a plateau: the LR policy would halve the LR every epoch and stop "successfully".
            raise ToolError(f"the validation loss is {total_loss / count} at step {self.global_step}: the network "
                            "gives non-finite outputs (its input features were checked for NaN/Inf when read); "
                            "lower optimizer.lr or set optimizer.clip_norm")
        return total_loss / count, total_acc / count

    def divergence_message(self, source, values: dict, batch=None) -> str:
        """Why training stopped at a non-finite loss, naming the batch of the step: its utterances and
        largest feature, as the input ``source`` describes them (:meth:`TrainingInput.describe_batch`;
        ``batch`` is what the step trained on, for inputs that cannot rebuild it from the step number)."""
        step = self.global_step - 1
        what, largest = source.describe_batch(step, batch)
        return (f"training diverged at step {step + 1} (loss {values['total']}); the batch of that step was "
                f"{what}, largest |feature| {largest:.4g}; lower optimizer.lr, set optimizer.clip_norm, or check "
                "those features")

    def validation_eer(self, trial_set, batch_size: int, max_frames: int) -> float:
        """EER (%) of cosine scores of embedding_a on the trials of a held-out-speaker set."""
        vectors = {}
        for utts, feats in trial_set.batches(batch_size, max_frames=max_frames):
            for utt, vector in zip(utts, self._embed_fn(tf.constant(feats)).numpy().astype(np.float64)):
                vectors[utt] = vector / max(np.linalg.norm(vector), 1e-12)
        scores = np.array([vectors[e] @ vectors[t] for e, t in trial_set.trials])
        eer, _ = eer_from_arrays(scores[trial_set.is_target], scores[~trial_set.is_target])
        return 100.0 * eer

    # ------------------------------------------------------------------ state
    @property
    def global_step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    @property
    def learning_rate(self) -> float:
        return float(np.asarray(self.optimizer.learning_rate))

    def set_learning_rate(self, value: float) -> None:
        self.optimizer.learning_rate.assign(value)

    def plateau_state(self) -> schedule.PlateauState:
        return schedule.PlateauState(float(self.best_loss.numpy()), int(self.bad_epochs.numpy()),
                                     int(self.reductions.numpy()))

    def store_plateau_state(self, state: schedule.PlateauState) -> None:
        self.best_loss.assign(state.best_loss)
        self.bad_epochs.assign(state.bad_epochs)
        self.reductions.assign(state.reductions_without_improvement)

    def save_weights(self, path: str) -> None:
        with atomic_path(path) as tmp:
            self.model.save_weights(tmp, overwrite=True)


def _gather_replicas(tensor):
    """Concatenate every replica's ``tensor`` along axis 0 (global-batch order), differentiably.

    ReplicaContext.all_gather would do, but MultiWorkerMirroredStrategy's all_gather fails in
    TF 2.21 ("destinations can not be empty"); a SUM all-reduce of each replica's rows placed at
    its offset in a zero tensor is the same concatenation, and its gradient is the all-reduced
    upstream gradient sliced back to the replica's rows.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    rows = tf.shape(tensor)[0]
    padding = tf.stack([replica * rows, (replicas - 1 - replica) * rows])
    paddings = tf.concat([padding[None, :], tf.zeros([tf.rank(tensor) - 1, 2], tf.int32)], axis=0)
    return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.pad(tensor, paddings))


def _is_kernel(variable) -> bool:
    """Affine/convolution kernels and class weights: the variables the L2 term decays."""
    name = getattr(variable, "path", None) or variable.name
    return name.split("/")[-1].split(":")[0] == "kernel"
