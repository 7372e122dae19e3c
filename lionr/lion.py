"""The Lion optimizer as a Keras 3 optimizer.

Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms")
keeps one momentum ``m`` per parameter ``p``. With gradient ``g``, learning
rate ``lr``, weight decay ``wd`` and rates ``b1``, ``b2``, one step is::

    c = b1 * m + (1 - b1) * g
    p <- p - lr * (sign(c) + wd * p)
    m <- b2 * m + (1 - b2) * g

Keras's base optimizer applies, in order: loss-scale division, gradient
accumulation, clipping, the decoupled weight decay ``p <- p - lr * wd * p``,
then the sign step above, then EMA. Since ``sign(c)`` does not depend on
``p``, this is exactly the rule above.

With ``cautious=True`` the sign step becomes ``lr * scale * t``, with
``(t, scale) = lionr.cautious.mask(sign(c), g)``.
"""

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from lionr import cautious as cautious_rule
from lionr import checkpoint
from lionr import checks
from lionr import exchange
from lionr import hyper
from lionr import kernels
from lionr import placement
from lionr import rounding
from lionr import state


@keras.saving.register_keras_serializable(package="lionr")
class Lion(keras.optimizers.Optimizer):
    """Lion: sign of an interpolated momentum, one float32 state per weight.

    Args:
        learning_rate: number >= 0, ``LearningRateSchedule``, or callable
            taking no arguments. What a schedule gives at step 0 and what a
            callable returns are checked when the optimizer is made (or,
            for a callable that cannot be called yet, when it is built);
            see ``lionr.hyper``.
        beta_1: weight of the momentum in the interpolation ``c`` whose sign
            is the update; in (0, 1]. Number, constant scalar tensor,
            schedule (called with the iteration count) or no-argument
            callable.
        beta_2: decay rate of the momentum ``m``; in [0, 1]. Same forms as
            ``beta_1``.
        weight_decay: as for every Keras optimizer, and so are
            ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
            ``ema_momentum``, ``ema_overwrite_frequency``,
            ``loss_scale_factor``, ``gradient_accumulation_steps`` and
            ``name``; all validated at construction (see
            ``lionr.optimizer_lion``); ``name=None`` lets Keras name it.
        momentum_dtype: how the momentum is stored: ``"float32"`` (default),
            ``"bfloat16"`` or ``"int8"`` (block-quantized); see
            ``lionr.state``.
        weight_rounding: how a new value of a 16-bit float weight is
            rounded: ``"nearest"`` (default, as Keras), ``"kahan"``
            (compensated) or ``"stochastic"``; see ``lionr.rounding``.
        state_sharding: under a ``keras.distribution`` with a data axis of
            several devices, ``"sharded"`` (default) cuts the state of a
            parameter replicated over that axis across it, and the update
            is exchanged as 2-bit signs; ``"replicated"`` keeps the
            parameter's layout, as Keras does. See ``lionr.placement``.
        cautious: ``True`` to keep only the coordinates of the update whose
            sign agrees with the gradient's, rescaled per tensor (see
            ``lionr.cautious``); default ``False``.
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.99,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name="lion",
        momentum_dtype="float32",
        weight_rounding="nearest",
        state_sharding="sharded",
        cautious=False,
        **kwargs,
    ):
        checks.no_unknown(
            kwargs,
            ["momentum_dtype", "weight_rounding", "state_sharding", "cautious"],
        )
        positive = dict(low=0, low_open=True, optional=True)
        clips = {
            "clipnorm": checks.number("clipnorm", clipnorm, **positive),
            "clipvalue": checks.number("clipvalue", clipvalue, **positive),
            "global_clipnorm": checks.number(
                "global_clipnorm", global_clipnorm, **positive
            ),
        }
        checks.one_clip(clips)
        super().__init__(
            learning_rate=checks.hyperparameter("learning_rate", learning_rate),
            weight_decay=checks.number(
                "weight_decay", weight_decay, low=0, optional=True
            ),
            use_ema=checks.boolean("use_ema", use_ema),
            ema_momentum=checks.number("ema_momentum", ema_momentum, 0, 1),
            ema_overwrite_frequency=checks.integer(
                "ema_overwrite_frequency", ema_overwrite_frequency, 1
            ),
            loss_scale_factor=checks.number(
                "loss_scale_factor", loss_scale_factor, **positive
            ),
            gradient_accumulation_steps=checks.integer(
                "gradient_accumulation_steps", gradient_accumulation_steps, 2
            ),
            name=checks.string("name", name, optional=True),
            **clips,
        )
        self.beta_1 = checks.hyperparameter("beta_1", beta_1)
        self.beta_2 = checks.hyperparameter("beta_2", beta_2)
        self.momentum_dtype = checks.choice(
            "momentum_dtype", momentum_dtype, state.MOMENTUM_DTYPES
        )
        self.weight_rounding = checks.choice(
            "weight_rounding", weight_rounding, rounding.WEIGHT_ROUNDINGS
        )
        self.state_sharding = checks.choice(
            "state_sharding", state_sharding, placement.STATE_SHARDINGS
        )
        self.cautious = checks.boolean("cautious", cautious)
        # Callables and schedules are evaluated and checked now; one that
        # cannot be evaluated yet (it may refer to this optimizer) is
        # evaluated when the optimizer is built, still before any step.
        self._unchecked = tuple(
            name for name in hyper.NAMES
            if not hyper.first_check(name, self._given(name), deferrable=True)
        )

    def _given(self, name):
        """The learning rate or a beta, as given."""
        return self._learning_rate if name == "learning_rate" else getattr(
            self, name
        )

    def _get_current_learning_rate(self):
        if isinstance(self._learning_rate, keras.Variable):
            return self._learning_rate
        return hyper.resolve(
            self._learning_rate, self._iterations, "learning_rate"
        )

    def build(self, var_list):
        """Create one momentum store per trainable variable."""
        if self.built:
            return
        for name in self.__dict__.pop("_unchecked", ()):
            hyper.first_check(name, self._given(name))
        super().build(var_list)
        skip = self._overwrite_variable_with_gradient
        rounded = [rounding.rounds(v, self.weight_rounding) for v in var_list]
        self._placements = [
            placement.Placement(
                v, self.state_sharding,
                state.block_of(v, self.momentum_dtype),
            )
            for v in var_list
        ]
        layouts = [p.state for p in self._placements]
        self._slots = [
            None
            if skip(v)
            else state.make_slot(self, v, self.momentum_dtype, r, lay)
            for v, r, lay in zip(var_list, rounded, layouts)
        ]
        self._rounders = rounding.make_stores(
            self, var_list, self.weight_rounding, skip, layouts
        )

    def _rounder(self, variable):
        """The ``lionr.rounding`` store of ``variable``, or None."""
        return self._rounders[self._get_variable_index(variable)]

    @property
    def _momentums(self):
        """The stored momentum variables (float32 mode)."""
        return [s.slot if s is not None else None for s in self._slots]

    def _apply_weight_decay(self, variables):
        # Weights under a rounding store take their decay inside their own
        # float32 step (lionr.rounding.lion_step), not in a rounded pass.
        variables = [v for v in variables if self._rounder(v) is None]
        if not variables:
            return
        # Where the backend's fused step can apply the decay in the same
        # pass over memory (torch), only its factor is computed here.
        if kernels.fuses_weight_decay(self, variables):
            object.__setattr__(self, "_decay_now", kernels.decay_factor(self))
            return
        super()._apply_weight_decay(variables)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Betas are resolved once per step, then read by every variable.
        betas = (
            hyper.resolve(self.beta_1, self._iterations, "beta_1"),
            hyper.resolve(self.beta_2, self._iterations, "beta_2"),
        )
        object.__setattr__(self, "_betas_now", betas)
        object.__setattr__(self, "_written_last", ())  # see kernels.after
        # torch: one fused step per dtype (weights under a rounding store
        # included); elsewhere, or where it cannot, Keras's loop.
        decay = self.__dict__.pop("_decay_now", None)
        if kernels.apply_fused(
            self, grads, trainable_variables, learning_rate, betas, decay
        ):
            return
        decayed = [v for v in trainable_variables if self._rounder(v) is None]
        if decay is not None and decayed:
            super()._apply_weight_decay(decayed)
        super()._backend_update_step(grads, trainable_variables, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        """One Lion step for one variable (the rule in the module docstring).

        The step is computed in the weight's dtype, or in float32 for a weight
        under a ``lionr.rounding`` store, which then writes the weight. Where
        the state is cut over the data axis beyond the parameter
        (``lionr.placement``), the step is computed on each device's piece;
        the sign is then exchanged in 2 bits (``lionr.exchange``), or, under
        a rounding store, the new 16-bit weight values are gathered.
        With ``cautious``, ``lr`` times the tensor's scale (``lionr.cautious``,
        float32) is rounded once into that dtype, and the masked ternary
        update is what is exchanged.
        """
        rounder = self._rounder(variable)
        dtype = variable.dtype if rounder is None else "float32"
        index = self._get_variable_index(variable)
        slot = self._slots[index]
        # Steps that need a full-size temporary run one after the other.
        scratch = slot.scratch or getattr(rounder, "scratch", False)
        last = []
        if scratch:
            gradient = kernels.after(
                gradient, self.__dict__.get("_written_last", ())
            )
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        beta_1, beta_2 = (ops.cast(b, dtype) for b in self._betas_now)
        place = self._placements[index]
        m = slot.read()
        c = place.on_state(
            ops.add(ops.multiply(m, beta_1), ops.multiply(gradient, 1.0 - beta_1))
        )
        u = ops.sign(c)
        rate = lr
        if self.cautious:
            u, scale = cautious_rule.mask(u, gradient)
            rate = ops.cast(
                ops.multiply(ops.cast(learning_rate, "float32"), scale), dtype
            )
        if rounder is None and place.spread:
            exchange.apply_update(self, variable, u, rate, place)
        elif rounder is None:
            self.assign_sub(variable, ops.multiply(rate, u))
        else:
            step = ops.multiply(rate, u)
            written = rounding.lion_step(
                rounder, self, variable, step, self._decay_of(variable, lr),
                place,
            )
            if scratch:
                last.append(written)
        written = slot.advance(
            self, m, gradient, beta_2,
            lambda m_new: kernels.after_parameter(m_new, variable),
        )
        if scratch:
            object.__setattr__(self, "_written_last", (*last, written))

    def _decay_of(self, variable, lr):
        """``wd * lr`` (``lr`` a tensor) when ``variable`` decays, else None."""
        if self.weight_decay is None or not self._use_weight_decay(variable):
            return None
        return ops.multiply(ops.cast(self.weight_decay, lr.dtype), lr)

    def get_config(self):
        rate = self._learning_rate
        if callable(rate) and not isinstance(
            rate, (LearningRateSchedule, keras.Variable)
        ):
            # Keras would serialize the callable as it is (or fail to, for
            # an object without a config); hyper.to_config saves it instead,
            # so Keras sees no learning rate meanwhile.
            object.__setattr__(self, "_learning_rate", None)
            try:
                config = super().get_config()
            finally:
                object.__setattr__(self, "_learning_rate", rate)
            config["learning_rate"] = hyper.to_config(rate, "learning_rate")
        else:
            config = super().get_config()
        config.update(
            beta_1=hyper.to_config(self.beta_1, "beta_1"),
            beta_2=hyper.to_config(self.beta_2, "beta_2"),
            momentum_dtype=self.momentum_dtype,
            weight_rounding=self.weight_rounding,
            state_sharding=self.state_sharding,
            cautious=self.cautious,
        )
        return config

    def save_own_variables(self, store):
        """Every variable as its whole array, and for int8 momentum the
        grouping its blocks were written under (``lionr.checkpoint``)."""
        checkpoint.save(self, store)

    def load_own_variables(self, store):
        """Load a file saved under any device count and layout."""
        checkpoint.load(self, store)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("beta_1", "beta_2"):
            if key in config:
                config[key] = hyper.from_config(config[key], custom_objects)
        return super().from_config(config, custom_objects=custom_objects)
