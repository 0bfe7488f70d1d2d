//! Domain types: newtype ids and parsed inputs. Values here are valid by construction; parsing
//! happens once, at the edge (HTTP, configuration, plugin descriptions).

mod names;
mod run;
mod slug;
pub mod storable;
mod workspace;

pub use names::{ConflictId, CrmId, DeliveryId, EndpointId, EntityName, EventId, FieldName, RecordId, RunId};
pub(crate) use run::stored_enum;
pub use run::{ConflictStatus, ItemOutcome, RunStatus, SyncDirection, Trigger};
pub use slug::PluginSlug;
pub use workspace::WorkspaceId;
