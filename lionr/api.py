"""``optimizer_lion()``: the keras3 R signature, in Python.

R's formals map one to one: ``NULL`` is ``None``, ``FALSE`` is ``False``,
the arguments after R's ``...`` are keyword-only here and ``**kwargs`` plays
``...``.
"""

from lionr.lion import Lion


def optimizer_lion(
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
    name="lion",
    *,
    loss_scale_factor=None,
    gradient_accumulation_steps=None,
    **kwargs,
):
    """Make a Lion optimizer for Keras 3.

    Each step, with gradient ``g`` and momentum ``m`` (zero at first):

        p <- p - learning_rate * (sign(beta_1 * m + (1 - beta_1) * g)
                                  + weight_decay * p)
        m <- beta_2 * m + (1 - beta_2) * g

    Lion's update has unit size per coordinate, so its learning rate is
    usually 3-10 times smaller than AdamW's and its weight decay 3-10 times
    larger.

    Args:
        learning_rate: number >= 0, a
            ``keras.optimizers.schedules.LearningRateSchedule``, or a callable
            taking no arguments that returns the rate. Default 0.001. A
            callable that needs arguments is refused; a callable is called,
            and a schedule evaluated at step 0, when the optimizer is made
            (or, if that fails, when it is built), and what it gives is
            checked like a number given here. Plain numbers a callable
            returns are checked at every step; tensors it returns inside a
            compiled step are used as they come.
        beta_1: weight of the momentum when forming the update direction, in
            (0, 1]. A number, a constant scalar tensor, a schedule, or a
            callable taking no arguments. Default 0.9.
        beta_2: decay rate of the momentum, in [0, 1]. Same forms as
            ``beta_1``. Default 0.99. Callables and schedules of both betas
            are checked as for ``learning_rate``.
        weight_decay: ``None`` or a number >= 0: decoupled weight decay,
            scaled by the current learning rate.
        clipnorm: ``None`` or a number > 0: clip each gradient to this norm.
        clipvalue: ``None`` or a number > 0: clip each gradient element to
            ``[-clipvalue, clipvalue]``.
        global_clipnorm: ``None`` or a number > 0: clip all gradients together
            to this global norm. At most one of the three clipping arguments
            may be set.
        use_ema: ``True`` or ``False``: keep an exponential moving average of
            the weights.
        ema_momentum: number in [0, 1]: ``average <- ema_momentum * average +
            (1 - ema_momentum) * weight``. Used only with ``use_ema``.
        ema_overwrite_frequency: ``None`` or an integer >= 1: every this many
            steps, the weights are replaced by their average. With ``None``
            they are replaced by ``finalize_variable_values()``, which
            ``fit()`` calls after its last epoch.
        name: non-empty string, the prefix of the optimizer's variables;
            ``None`` lets Keras name it (``lion``, ``lion_1``, ...).
        loss_scale_factor: ``None`` or a number > 0: the loss is multiplied
            by it and the gradients divided by it (for mixed precision).
        gradient_accumulation_steps: ``None`` or an integer >= 2: apply the
            mean gradient once every this many steps. A whole-number float
            such as ``2.0`` counts as ``2``.
        **kwargs: further named arguments for ``lionr.Lion``; today
            ``momentum_dtype``, how the momentum is stored: ``"float32"``
            (default; stored in the weight's dtype, so bfloat16 under a
            bfloat16 policy), ``"bfloat16"``, or ``"int8"`` (blocks of 256
            8-bit codes with a float32 scale each; a tensor of fewer than
            4096 elements, such as a bias, keeps its momentum as
            ``"float32"`` does, in float32 for a float32 weight);
            and ``weight_rounding``, how a new value of a 16-bit float weight
            is rounded: ``"nearest"`` (default, as Keras), ``"kahan"`` (the
            rounding error kept in a buffer of the weight's dtype and added
            back at the next step) or ``"stochastic"`` (rounded up or down at
            random, unbiased; bfloat16 weights). Float32 weights are not
            affected. And ``state_sharding``: under a ``keras.distribution``
            whose data (batch) axis has several devices, ``"sharded"``
            (default) cuts the state of each parameter replicated over that
            axis across its devices (each holds about 1/N of it) and
            exchanges the update as 2-bit signs; ``"replicated"`` keeps it
            whole on every device, as Keras does. Results are the same
            either way. And ``cautious`` (``True`` or ``False``, default
            ``False``): keep only the coordinates of the update whose sign
            agrees with the gradient's and scale them by ``n / kept`` per
            tensor (no move where none agrees; see ``lionr.cautious``).
            Any other name is refused.

    Returns:
        A ``lionr.Lion``, a ``keras.optimizers.Optimizer``.

    Raises:
        lionr.ArgumentError: a value out of range (a ``ValueError``).
        lionr.ArgumentTypeError: a value of a kind not accepted (a
            ``TypeError``). Both are ``lionr.checks.Refusal``s, whose fields
            (``argument``, ``value``, ``accepted``, ``detail``) say what was
            refused and what is accepted.

    Saving:
        ``model.save()`` keeps the optimizer and its state; ``import lionr``
        before ``keras.saving.load_model()`` so that Keras knows ``Lion``.
        A callable ``learning_rate``, ``beta_1`` or ``beta_2`` that Keras
        cannot rebuild when loading (a local function or closure, an R
        function, a callable object without a config) is saved as the value
        it returns at save time (``lionr.hyper.Constant``), with a
        ``lionr.FrozenHyperparameterWarning`` naming the argument (also in
        its field ``argument``; lionr's R package signals it as an R
        warning of class ``lionr_warning``). Schedules,
        tensors and registered functions are saved as they are; a lambda is
        saved as bytecode and loads with ``safe_mode=False``.
    """
    return Lion(
        learning_rate=learning_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        weight_decay=weight_decay,
        clipnorm=clipnorm,
        clipvalue=clipvalue,
        global_clipnorm=global_clipnorm,
        use_ema=use_ema,
        ema_momentum=ema_momentum,
        ema_overwrite_frequency=ema_overwrite_frequency,
        name=name,
        loss_scale_factor=loss_scale_factor,
        gradient_accumulation_steps=gradient_accumulation_steps,
        **kwargs,
    )
