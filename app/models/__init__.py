"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.alert import AlertChannel, AlertDelivery, AlertProblem
from app.models.base import Base
from app.models.cards import (  # noqa: F401 (registers the tables)
    CardsFollowedPerson,
    CardsFollowState,
    CardsGroupLink,
    CardsUserCreate,
    CardsUserLink,
)
from app.models.cards_events import CardsEvent, CardsStatsPushed
from app.models.connector import Connector
from app.models.console_link import ConsoleLink
from app.models.delivery import Delivery
from app.models.directory import (  # noqa: F401 (registers the tables)
    DirectoryDepartment,
    DirectoryEmployee,
    DirectoryState,
    LuccaEvent,
)
from app.models.elevo import ElevoPersonLeftOut, ElevoPersonSent, ElevoPushState  # noqa: F401 (registers the tables)
from app.models.link import Link
from app.models.run import FINISHED, Run, RunEvent, RunItem
from app.models.schedule import Schedule
from app.models.tenant import Tenant

__all__ = [
    "FINISHED", "AlertChannel", "AlertDelivery", "AlertProblem", "Base", "CardsEvent", "CardsStatsPushed", "Connector",
    "ConsoleLink", "Delivery", "Link", "Run", "RunEvent", "RunItem", "Schedule", "Tenant",
]  # fmt: skip
