"""View models of the dashboard's pages, one module per page (see ``common``).

``from runway_costs.dashboard import views`` then ``views.overview(...)``: the names below
are the pages' whole interface to the data.
"""

from runway_costs.analytics.forecast import HORIZON_DAYS
from runway_costs.analytics.notify import ChannelCheck, send_test_notification
from runway_costs.dashboard.views.alerts import (
    AlertsData,
    alert_rules,
    alerts,
    channel_labels,
    open_alert_count,
)
from runway_costs.dashboard.views.common import (
    CollectionStatus,
    DataUnavailable,
    Scope,
    collection_status,
    known_orgs,
    reader,
)
from runway_costs.dashboard.views.limits import LimitsData, limits
from runway_costs.dashboard.views.overview import (
    Overview,
    as_of_time,
    overview,
    overview_groups,
    scope_budget,
)
from runway_costs.dashboard.views.planner import (
    EDIT_COLUMNS,
    PlannerData,
    clean_records,
    plan_feasibility,
    plan_rows_from_file,
    price_records,
    rate_table,
    tier_feasibility,
)
from runway_costs.dashboard.views.spend import SpendData, spend

__all__ = [
    "EDIT_COLUMNS",
    "HORIZON_DAYS",
    "AlertsData",
    "ChannelCheck",
    "CollectionStatus",
    "DataUnavailable",
    "LimitsData",
    "Overview",
    "PlannerData",
    "Scope",
    "SpendData",
    "alert_rules",
    "alerts",
    "as_of_time",
    "channel_labels",
    "clean_records",
    "collection_status",
    "known_orgs",
    "limits",
    "open_alert_count",
    "overview",
    "overview_groups",
    "plan_feasibility",
    "plan_rows_from_file",
    "price_records",
    "rate_table",
    "reader",
    "scope_budget",
    "send_test_notification",
    "spend",
    "tier_feasibility",
]
