//! The closed sets of sync data, as stored and shown: a run's status, direction and trigger, each
//! record's outcome, a conflict's status — each with one spelling in the database, the API and the
//! OpenAPI document.

/// Defines a fieldless enum whose every variant has one stored (and serialized) spelling, with
/// `as_str`, `parse`, `ALL`, `Display` and an OpenAPI schema listing the spellings.
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        // `rename_all` is what the OpenAPI schema reads (utoipa does not see a per-variant
        // `rename` written through the macro); serde takes each variant's own spelling, and a
        // test holds the two equal for every enum the API shows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The stored (and serialized) spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Parses the stored spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The spellings, comma-separated (for error messages).
            pub fn spellings() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum!(
    /// Where a conflict is.
    ConflictStatus {
        /// Waiting for a user.
        Pending = "pending",
        /// Settled by a user; the values written are its resolution.
        Resolved = "resolved",
        /// Dismissed without writing (by a user, or by a newer conflict of the same record).
        Ignored = "ignored",
    }
);

stored_enum!(
    /// Where a run is, or how it ended.
    RunStatus {
        /// Executing now (or queued behind another run of the integration).
        Running = "running",
        /// Ended with every record handled.
        Completed = "completed",
        /// Ended with some records written and some failed (or stopped midway after writing some).
        Partial = "partial",
        /// Ended with nothing written, or stopped before it could write anything.
        Failed = "failed",
        /// Its process stopped before it ended; retry it.
        Interrupted = "interrupted",
        /// Stopped at the CRM account's daily API limit; it continues when the allocation allows.
        Deferred = "deferred",
    }
);

impl RunStatus {
    /// Whether a retry re-runs the whole operation (nothing reliable was recorded per record)
    /// rather than only its failed records.
    pub fn retries_whole(self) -> bool {
        matches!(self, Self::Interrupted | Self::Failed)
    }
}

stored_enum!(
    /// Which way records move.
    SyncDirection {
        /// Workspace → CRM only.
        Push = "push",
        /// CRM → workspace only.
        Pull = "pull",
        /// Both ways, merged.
        Bidirectional = "bidirectional",
    }
);

pub(crate) use stored_enum;

#[allow(clippy::derivable_impls, reason = "the enum is defined by `stored_enum!`")]
impl Default for SyncDirection {
    fn default() -> Self {
        Self::Bidirectional
    }
}

impl SyncDirection {
    /// Whether runs pull from the CRM.
    pub fn pulls(self) -> bool {
        self != Self::Push
    }

    /// Whether runs push to the CRM.
    pub fn pushes(self) -> bool {
        self != Self::Pull
    }
}

stored_enum!(
    /// What started a run.
    Trigger {
        /// A user through the API.
        Manual = "manual",
        /// The scheduler.
        Schedule = "schedule",
        /// A CRM webhook.
        Webhook = "webhook",
        /// A retry of an earlier run.
        Retry = "retry",
        /// A workspace record written or deleted, with the integration syncing in real time.
        Change = "change",
    }
);

stored_enum!(
    /// What happened to one record in a run.
    ItemOutcome {
        /// Created in the CRM.
        Created = "created",
        /// Updated in the CRM or, by a pull, in the workspace.
        Updated = "updated",
        /// A new workspace record made from a CRM record.
        Imported = "imported",
        /// A workspace record and a CRM record found to be the same (by match key) and linked.
        Linked = "linked",
        /// Nothing to do (counted, never kept as an item).
        Unchanged = "unchanged",
        /// Not synced, on purpose (deleted on one side, unresolved conflict).
        Skipped = "skipped",
        /// Failed; the item carries the error.
        Failed = "failed",
        /// Left as a conflict for a user.
        Conflict = "conflict",
        /// Deleted on this side because it was deleted on the other (`propagate_deletes`).
        Deleted = "deleted",
    }
);

impl ItemOutcome {
    /// Whether the record was written somewhere (counted as succeeded).
    pub fn succeeded(self) -> bool {
        matches!(self, Self::Created | Self::Updated | Self::Imported | Self::Linked | Self::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_round_trips_through_parse_and_serde() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(*status));
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
        }
        for outcome in ItemOutcome::ALL {
            assert_eq!(ItemOutcome::parse(outcome.as_str()), Some(*outcome));
            let back: ItemOutcome = serde_json::from_value(serde_json::json!(outcome.as_str())).unwrap();
            assert_eq!(back, *outcome);
        }
        assert_eq!(Trigger::parse("cron"), None);
    }

    /// The spellings the OpenAPI document lists for an enum.
    fn schema_spellings<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    fn spellings<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<String> {
        all.iter().map(|v| as_str(*v).to_owned()).collect()
    }

    #[test]
    fn the_openapi_schema_lists_the_stored_spellings() {
        assert_eq!(schema_spellings::<RunStatus>(), spellings(RunStatus::ALL, RunStatus::as_str));
        assert_eq!(schema_spellings::<SyncDirection>(), spellings(SyncDirection::ALL, SyncDirection::as_str));
        assert_eq!(schema_spellings::<Trigger>(), spellings(Trigger::ALL, Trigger::as_str));
        assert_eq!(schema_spellings::<ItemOutcome>(), spellings(ItemOutcome::ALL, ItemOutcome::as_str));
        assert_eq!(schema_spellings::<ConflictStatus>(), spellings(ConflictStatus::ALL, ConflictStatus::as_str));
        assert_eq!(SyncDirection::default(), SyncDirection::Bidirectional);
        assert_eq!(SyncDirection::spellings(), "push, pull, bidirectional");
    }
}
