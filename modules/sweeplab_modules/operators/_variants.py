"""Variants of a generic operator: a subclass that fixes arguments and takes its defaults from a registry preset.

``class FNO2d(FNO, spatial_dims=2, preset=("fno2d", "reference")): ...`` is ``FNO`` with ``spatial_dims`` fixed
to 2 (passing it is an error) and every argument that the registry's ``fno2d`` preset ``reference`` names defaulting
to the preset's value. The variant declares nothing else: there is no second parameter list to drift from the
generic class, and published settings are written only in the registry's presets (the way neuraloperator's
variants only set defaults). ``sweeplab_modules.registry.constructor_parameters`` reads the same declaration from
the source, so ``sweeplab validate`` sees the variant's parameters without importing torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

from sweeplab_modules.registry import MODELS

__all__ = ["WithVariants"]


class WithVariants:
    """Base of a generic class whose subclasses are variants (see the module docstring)."""

    fixed_arguments: ClassVar[Mapping[str, Any]] = {}
    """The constructor arguments this variant fixes, with their values (empty on the generic class)."""
    defaults_preset: ClassVar[tuple[str, str] | None] = None
    """``(registered model, preset)`` whose values are this variant's defaults."""

    def __init_subclass__(cls, *, preset: tuple[str, str] | None = None, **fixed: Any) -> None:
        super().__init_subclass__()
        if preset is None and not fixed:
            return
        generic_init = cls.__init__
        generic = inspect.signature(generic_init)
        defaults = dict(MODELS[preset[0]].presets[preset[1]]) if preset is not None else {}
        unknown = (set(fixed) | set(defaults)) - set(generic.parameters)
        if unknown:
            raise TypeError(f"{cls.__name__}: {sorted(unknown)} are not parameters of {cls.__mro__[1].__name__}")
        signature = generic.replace(
            parameters=[
                parameter.replace(default=defaults.get(name, parameter.default))
                for name, parameter in generic.parameters.items()
                if name not in fixed
            ]
        )

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if fixed.keys() & kwargs.keys():
                given = ", ".join(f"{name}={value!r}" for name, value in fixed.items() if name in kwargs)
                raise TypeError(f"{cls.__name__} fixes {given}; its generic class takes other values")
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            generic_init(*bound.args, **bound.kwargs, **fixed)

        __init__.__signature__ = signature  # type: ignore[attr-defined]
        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        __init__.__doc__ = f"See {cls.__mro__[1].__name__}; fixed: {fixed}; defaults: preset {preset}."
        cls.__init__ = __init__  # type: ignore[method-assign]
        cls.fixed_arguments = {**cls.fixed_arguments, **fixed}
        cls.defaults_preset = preset or cls.defaults_preset
