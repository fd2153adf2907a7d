"""How far a tenant's directory copy is, as the listings that read it say (CONTRACT section 13)."""

from typing import Literal

from pydantic import BaseModel, Field


class DirectoryLoad(BaseModel):
    status: Literal["ready", "loading"] = Field(
        description="`ready`: the listing comes from the service's copy of Lucca's directory, complete since its "
        "first full sync. `loading`: that sync has not completed yet, so the listing is empty for now."
    )
    progress: int = Field(
        ge=0, description="People read by the full sync: so far while `loading`, by the latest one once `ready`."
    )
    message: str = Field(description="What this means, in plain words.")

    @property
    def ready(self) -> bool:
        return self.status == "ready"


DIRECTORY_FIELD = Field(
    description="Where the listing comes from: Lucca's directory as the service keeps it, and whether it is "
    "complete yet. Before the first full sync completes, `items` is empty and `status` is `loading` (never an "
    "error: no partner is called while you wait)."
)
