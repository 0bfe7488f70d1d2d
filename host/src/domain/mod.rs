//! Domain types: newtype ids and parsed inputs. Values here are valid by construction; parsing
//! happens once, at the edge (HTTP, configuration, plugin descriptions).

mod names;
mod slug;
pub mod storable;
mod workspace;

pub use names::{EntityName, FieldName, RecordId};
pub use slug::PluginSlug;
pub use workspace::WorkspaceId;
