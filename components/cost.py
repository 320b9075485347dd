"""What a stack's capacity costs, in DBUs per hour: one function of the plan and the catalog.

`render`, `diff`, `validate` (the budget), the program (the budget, and the export
`estimated_dbu_per_hour`) all read `estimate()`. At `up` the endpoint provider refines it with
the workspace's live `dbus` (get-model-optimization-info), warning where the two differ.

Each endpoint costs, per hour, its number of chunks (or model units) times the rate per chunk
(components/catalog.py DBU_RATES), at its minimum and at its maximum capacity. Scale-to-zero
is 0 DBU/h at the minimum, a known figure. A rate no public source gives is unknown: shown as
unknown, never as 0, and a total over an unknown is unknown (with what is known beside it).
A pay-per-token endpoint is billed per token, not per hour: it adds nothing hourly.

No pulumi, no databricks-sdk: `validate`, `render` and `diff` run on a bare runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from components import catalog
from components.args import EndpointArgs, ServedEntity

if TYPE_CHECKING:  # the plan imports this module: it gives each endpoint its share of the budget
    from components.plan import Plan

# Hours in an average month (8760 / 12), the convention cloud price pages use for $/month.
HOURS_PER_MONTH = 730

Billing = Literal["hourly", "per_token"]


@dataclass(frozen=True)
class EndpointCost:
    endpoint: str
    billing: Billing
    min_dbu_per_hour: float | None  # None: unknown
    max_dbu_per_hour: float | None
    sources: tuple[str, ...] = ()  # where each rate used comes from
    notes: tuple[str, ...] = ()  # why a figure is unknown, or how a rate was applied beyond its record

    @property
    def known(self) -> bool:
        return self.min_dbu_per_hour is not None and self.max_dbu_per_hour is not None


@dataclass(frozen=True)
class StackCost:
    endpoints: tuple[EndpointCost, ...]

    def by_name(self) -> dict[str, EndpointCost]:
        return {e.endpoint: e for e in self.endpoints}

    @property
    def unknown(self) -> tuple[str, ...]:
        """The endpoints whose rate is unknown."""
        return tuple(e.endpoint for e in self.endpoints if not e.known)

    def known_total(self, bound: Literal["min", "max"]) -> float:
        """The sum over the endpoints whose figure is known: a lower bound when some are not."""
        return sum((e.min_dbu_per_hour if bound == "min" else e.max_dbu_per_hour) or 0.0
                   for e in self.endpoints)

    def total(self, bound: Literal["min", "max"]) -> float | None:
        """The stack's DBUs per hour at every endpoint's min (or max); None when one is unknown."""
        return None if self.unknown else self.known_total(bound)


def _entity_cost(entity: ServedEntity) -> tuple[float | None, float | None, list[str], list[str]]:
    """(min, max, sources, notes) for one served entity."""
    units = getattr(entity, "provisioned_model_units", None)  # a unit model (issue 18)
    if units is not None:
        rate = catalog.dbu_rate(entity.entity_name, entity.entity_version)
        if rate is None or rate.basis != "unit":
            return None, None, [], [_no_rate(entity)]
        figure = float(units) * rate.dbu_per_hour
        return figure, figure, [rate.source], [rate.extrapolated] if rate.extrapolated else []
    low, high = entity.min_provisioned_throughput, entity.max_provisioned_throughput
    if low is None or high is None:
        # A custom model's workload size: no public DBU figure per size in the catalog.
        if entity.scale_to_zero_enabled:
            return 0.0, None, [], [f"{entity.entity_name}: no public DBU rate for workload size "
                                   f"{entity.workload_size or 'default'} (0 at min: scales to zero)"]
        return None, None, [], [f"{entity.entity_name}: no public DBU rate for workload size "
                                f"{entity.workload_size or 'default'}"]
    rate = catalog.dbu_rate(entity.entity_name, entity.entity_version)
    if rate is None or rate.basis != "chunk":
        # 0 tokens/s is 0 chunks whatever the rate: a known figure.
        return (0.0 if low == 0 else None), None, [], [_no_rate(entity)]
    notes = [rate.extrapolated] if rate.extrapolated else []
    for tps in (low, high):
        if tps % rate.size:
            notes.append(f"{tps} tokens/s is not a whole number of {rate.size}-token/s chunks: prorated")
    return (low / rate.size * rate.dbu_per_hour, high / rate.size * rate.dbu_per_hour,
            [rate.source], notes)


def _no_rate(entity: ServedEntity) -> str:
    if entity.entity_version is None:
        return (f"{entity.entity_name}: version resolved at create, so its rate is not known offline "
                "(pin entity_version to price it)")
    return f"{entity.entity_name} version {entity.entity_version}: no public DBU rate"


def endpoint_cost(args: EndpointArgs) -> EndpointCost:
    if args.mode == "pay_per_token":
        return EndpointCost(args.name, "per_token", 0.0, 0.0,
                            notes=("billed per token, not per hour (Databricks' shared endpoint)",))
    low: float | None = 0.0
    high: float | None = 0.0
    sources: list[str] = []
    notes: list[str] = []
    for entity in args.served_entities:
        e_low, e_high, e_sources, e_notes = _entity_cost(entity)
        low = None if low is None or e_low is None else low + e_low
        high = None if high is None or e_high is None else high + e_high
        sources += [s for s in e_sources if s not in sources]
        notes += [n for n in e_notes if n not in notes]
    return EndpointCost(args.name, "hourly", low, high, tuple(sources), tuple(notes))


def estimate(plan: Plan) -> StackCost:
    """Every endpoint's DBUs per hour at min and at max, from the plan and the catalog."""
    return StackCost(tuple(endpoint_cost(d.args) for d in plan.of_type(EndpointArgs)
                           if isinstance(d.args, EndpointArgs)))


# ---------------------------------------------------------------------------------------------
# The budget: max_dbu_per_hour, checked against every endpoint at its max (autoscaling may reach it)

BudgetStatus = Literal["none", "within", "over", "unknown"]


@dataclass(frozen=True)
class BudgetCheck:
    budget: float | None
    status: BudgetStatus
    message: str

    @property
    def refused(self) -> bool:
        return self.status == "over"


def check_budget(cost: StackCost, budget: float | None) -> BudgetCheck:
    if budget is None:
        return BudgetCheck(None, "none", "no max_dbu_per_hour set")
    known = cost.known_total("max")
    if known > budget:
        unknown = f" (and more: {', '.join(cost.unknown)} unknown)" if cost.unknown else ""
        return BudgetCheck(budget, "over", (
            f"the endpoints at their max cost {fmt(known)} DBU/h{unknown}, over max_dbu_per_hour "
            f"{fmt(budget)} (lower a max throughput, or raise max_dbu_per_hour)"))
    if cost.unknown:
        return BudgetCheck(budget, "unknown", (
            f"cannot check max_dbu_per_hour {fmt(budget)} offline: no public DBU rate for "
            f"{', '.join(cost.unknown)} (the known part is {fmt(known)} DBU/h at max; `pulumi up` "
            "checks each provisioned endpoint's live rate before it writes)"))
    return BudgetCheck(budget, "within", f"{fmt(known)} DBU/h at max, within max_dbu_per_hour {fmt(budget)}")


def fmt(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def money(dbu_per_hour: float | None, price_per_dbu: float | None) -> dict[str, float | None] | None:
    """$/hour and $/month for a DBU figure; None when there is no price."""
    if price_per_dbu is None:
        return None
    if dbu_per_hour is None:
        return {"per_hour": None, "per_month": None}
    hourly = dbu_per_hour * price_per_dbu
    return {"per_hour": round(hourly, 4), "per_month": round(hourly * HOURS_PER_MONTH, 2)}


def as_dict(cost: StackCost, price_per_dbu: float | None = None) -> dict[str, Any]:
    """The cost as `render`, `diff --format json` and the export show it: unknown is null."""
    out: dict[str, Any] = {
        "unit": "DBU per hour",
        "endpoints": {e.endpoint: {
            "billing": e.billing,
            "min_dbu_per_hour": e.min_dbu_per_hour,
            "max_dbu_per_hour": e.max_dbu_per_hour,
            **({"sources": list(e.sources)} if e.sources else {}),
            **({"notes": list(e.notes)} if e.notes else {}),
        } for e in cost.endpoints},
        "total": {"min_dbu_per_hour": cost.total("min"), "max_dbu_per_hour": cost.total("max")},
    }
    if cost.unknown:
        out["total"]["known_part"] = {"min_dbu_per_hour": cost.known_total("min"),
                                      "max_dbu_per_hour": cost.known_total("max")}
        if price_per_dbu is not None:
            # A lower bound in money too: the total stays unknown (never the known part alone).
            out["total"]["known_part"]["dollars_at_min"] = money(cost.known_total("min"), price_per_dbu)
            out["total"]["known_part"]["dollars_at_max"] = money(cost.known_total("max"), price_per_dbu)
        out["total"]["unknown"] = list(cost.unknown)
    if price_per_dbu is not None:
        out["price_per_dbu"] = price_per_dbu
        out["total"]["dollars_at_min"] = money(cost.total("min"), price_per_dbu)
        out["total"]["dollars_at_max"] = money(cost.total("max"), price_per_dbu)
    return out
