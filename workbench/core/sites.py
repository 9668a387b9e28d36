"""Named sites: the places in a model the workbench reads and writes.

==========================  =====================================================  ====================
site                        what it is                                             per-item shape
==========================  =====================================================  ====================
``resid(L)``                residual stream after decoder layer ``L``              ``(d_model,)``
``resid(-1,normed)``        after the final norm: HF's ``hidden_states[-1]``,      ``(d_model,)``
  (alias ``h_last``)        what the paper probed
``mean_last_n(N)``          mean of HF's ``hidden_states[-N:]`` (the final-normed  ``(d_model,)``
                            state and the residual after the N-1 layers before)
``head_in(L)``              input of layer ``L``'s ``o_proj``, split per head      ``(n_heads, head_dim)``
``head_in(L,last=N)``       the same over the last N tokens                        ``(N, n_heads, head_dim)``
``head_norm(L[,last=N])``   per-head L2 norm of ``head_in``                        ``(n_heads,)`` / ``(N, n_heads)``
==========================  =====================================================  ====================

All are read at the final non-pad token of prompt + response (``h_last``), or
the last N tokens for ``last=N``; positions before the start of a sequence
shorter than N are NaN. Layers may be negative (``-1`` is the last layer). The
string form is canonical: ``str(parse_site(s))`` round-trips, and it is the
key under which the feature store saves a site.

>>> parse_site("head_in(3, last=8)")
Site(kind='head_in', layer=3, n=8, normed=False)
>>> str(parse_site("h_last"))
'resid(-1,normed)'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from workbench.core.errors import WorkbenchError

__all__ = ["Site", "parse_site", "parse_sites", "expand_sites", "SITE_HELP"]

Kind = Literal["resid", "mean_last_n", "head_in", "head_norm"]

SITE_HELP = "resid(L), resid(-1,normed) (alias h_last), mean_last_n(N), head_in(L[,last=N]), head_norm(L[,last=N])"
_PATTERN = re.compile(r"^\s*(\w+)\s*(?:\((.*)\))?\s*$")


@dataclass(frozen=True)
class Site:
    """A parsed site name.

    Attributes:
        kind: ``resid``, ``mean_last_n``, ``head_in`` or ``head_norm``.
        layer: decoder layer (negative counts from the end); unused for ``mean_last_n``.
        n: token count for ``head_in``/``head_norm`` (``last=n``), layer count for
            ``mean_last_n``; 1 otherwise.
        normed: for ``resid`` of the last layer, read after the final norm.
    """

    kind: Kind
    layer: int = -1
    n: int = 1
    normed: bool = False

    def __str__(self) -> str:
        if self.kind == "resid":
            return f"resid({self.layer}{',normed' if self.normed else ''})"
        if self.kind == "mean_last_n":
            return f"mean_last_n({self.n})"
        return f"{self.kind}({self.layer}{f',last={self.n}' if self.n != 1 else ''})"

    @property
    def is_head(self) -> bool:
        return self.kind in ("head_in", "head_norm")


def _int(text: str, site: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise WorkbenchError(
            f"site {site!r}: {text!r} is not an integer; sites are {SITE_HELP}"
        ) from None


def parse_site(text: str | Site) -> Site:
    """Parse a site name such as ``resid(-1,normed)`` or ``head_in(3,last=8)``."""
    if isinstance(text, Site):
        return text
    match = _PATTERN.match(text)
    if not match:
        raise WorkbenchError(f"unknown site {text!r}: sites are {SITE_HELP}")
    name, args_text = match.group(1), match.group(2)
    if name == "h_last" and args_text is None:
        return Site("resid", -1, 1, True)
    args = [a.strip() for a in (args_text or "").split(",") if a.strip()]
    if name == "resid" and args:
        flags = args[1:]
        if flags not in ([], ["normed"]):
            raise WorkbenchError(f"site {text!r}: the only flag of resid is 'normed'")
        layer = _int(args[0], text)
        if flags and layer != -1:
            raise WorkbenchError(
                f"site {text!r}: 'normed' applies to the last layer only; use resid(-1,normed)"
            )
        return Site("resid", layer, 1, bool(flags))
    if name == "mean_last_n" and len(args) == 1:
        n = _int(args[0], text)
        if n < 1:
            raise WorkbenchError(f"site {text!r}: N must be >= 1")
        return Site("mean_last_n", -1, n, False)
    if name in ("head_in", "head_norm") and 1 <= len(args) <= 2:
        n = 1
        if len(args) == 2:
            key, _, value = args[1].partition("=")
            if key.strip() != "last":
                raise WorkbenchError(f"site {text!r}: the only option of {name} is last=N")
            n = _int(value.strip(), text)
            if n < 1:
                raise WorkbenchError(f"site {text!r}: last=N needs N >= 1")
        return Site(name, _int(args[0], text), n, False)  # type: ignore[arg-type]
    raise WorkbenchError(f"unknown site {text!r}: sites are {SITE_HELP}")


def parse_sites(texts: Iterable[str | Site]) -> list[Site]:
    """Parse several sites, refusing duplicates."""
    sites = [parse_site(t) for t in texts]
    if not sites:
        raise WorkbenchError(f"no site given: pass at least one of {SITE_HELP}")
    names = [str(s) for s in sites]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise WorkbenchError(f"site {dup} is given twice: pass each site once")
    return sites


def expand_sites(texts: Iterable[str], layers_with_attention: Iterable[int]) -> list[str]:
    """Expand ``head_in(*)`` / ``head_norm(*,last=N)`` to every layer that has attention."""
    out: list[str] = []
    layers = list(layers_with_attention)
    for text in texts:
        match = _PATTERN.match(text)
        args = (match.group(2) or "") if match else ""
        first, _, rest = args.partition(",")
        if match and match.group(1) in ("head_in", "head_norm") and first.strip() == "*":
            tail = f",{rest.strip()}" if rest.strip() else ""
            out.extend(f"{match.group(1)}({layer}{tail})" for layer in layers)
        else:
            out.append(text)
    return out
