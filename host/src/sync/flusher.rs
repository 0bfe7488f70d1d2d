//! Storing a run's items and counters behind the run: each flush hands its writes to a task and
//! the run goes on with its next batch while the database stores them, so on PostgreSQL the
//! server's work on one batch overlaps crmhost's on the next. One write is in flight at a time
//! (the next flush waits for it), so items land in order and a failure stops the run one batch
//! later at most. Events ride with their write and are handed back once it is stored, so the run
//! emits them only after the items they follow.

use tokio::task::JoinHandle;

use super::run::{Fatal, store_fatal};
use crate::domain::RunId;
use crate::notify::Event;
use crate::store::{PhaseSpan, RunCounts, RunItem, Store, StoreError};

/// The write in flight, with the events to emit once it is stored.
struct InFlight {
    write: JoinHandle<Result<(), StoreError>>,
    events: Vec<Event>,
}

/// A run's writer of items and counters.
#[derive(Default)]
pub(super) struct Flusher {
    in_flight: Option<InFlight>,
}

impl Flusher {
    /// Waits for the write in flight, then starts storing `items` and the counters. Answers the
    /// events of the write that was in flight, now stored; `events` come back the same way from
    /// the next call or [`Flusher::drain`].
    pub async fn start(
        &mut self,
        store: &Store,
        run_id: &RunId,
        (items, counts, timeline): (Vec<RunItem>, RunCounts, Vec<PhaseSpan>),
        events: Vec<Event>,
    ) -> Result<Vec<Event>, Fatal> {
        let stored = self.drain().await?;
        let (store, run_id) = (store.clone(), run_id.clone());
        let write = tokio::spawn(async move {
            store.add_run_items(&run_id, &items).await?;
            store.update_run_counts(&run_id, &counts, &timeline).await
        });
        self.in_flight = Some(InFlight { write, events });
        Ok(stored)
    }

    /// Waits until everything flushed so far is stored; answers the events that rode with it.
    pub async fn drain(&mut self) -> Result<Vec<Event>, Fatal> {
        let Some(InFlight { write, events }) = self.in_flight.take() else { return Ok(Vec::new()) };
        match write.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(store_fatal(err)),
            Err(join) => {
                tracing::error!(error = %join, "the task storing a run's progress stopped");
                return Err(Fatal("storing the run's progress stopped unexpectedly; retry the run".to_owned()));
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::ItemOutcome;
    use crate::sync::run::tests::store_with_running_run;

    fn items(range: std::ops::Range<i64>) -> Vec<RunItem> {
        range
            .map(|index| RunItem {
                index,
                entity: "contact".to_owned(),
                record_id: Some(format!("r{index}")),
                crm_id: None,
                outcome: ItemOutcome::Created,
                error: None,
            })
            .collect()
    }

    #[tokio::test]
    async fn flushes_land_in_order_with_the_last_counters_once_drained() {
        let dir = tempfile::tempdir().unwrap();
        let (store, workspace, run_id) = store_with_running_run(dir.path()).await;
        let mut flusher = Flusher::default();
        let first = RunCounts { records: 3, succeeded: 3, ..RunCounts::default() };
        let second = RunCounts { records: 5, succeeded: 5, ..RunCounts::default() };

        let stored = flusher.start(&store, &run_id, (items(0..3), first, Vec::new()), Vec::new()).await.unwrap();
        assert!(stored.is_empty(), "nothing was in flight before the first flush");
        flusher.start(&store, &run_id, (items(3..5), second, Vec::new()), Vec::new()).await.unwrap();
        flusher.drain().await.unwrap();

        let indexes: Vec<i64> =
            store.run_items(&run_id, None, -1, 100).await.unwrap().iter().map(|i| i.index).collect();
        assert_eq!(indexes, vec![0, 1, 2, 3, 4]);
        assert_eq!(store.get_run(&workspace, &run_id).await.unwrap().counts.records, 5);
    }

    #[tokio::test]
    async fn a_failed_write_stops_the_run_at_the_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, _) = store_with_running_run(dir.path()).await;
        // Items of a run that does not exist break the foreign key: the write fails.
        let unknown = RunId::generate();
        let mut flusher = Flusher::default();
        flusher.start(&store, &unknown, (items(0..2), RunCounts::default(), Vec::new()), Vec::new()).await.unwrap();

        let next = flusher.start(&store, &unknown, (items(2..3), RunCounts::default(), Vec::new()), Vec::new()).await;
        let Err(Fatal(message)) = next else { panic!("the failed write must stop the run") };
        assert!(message.contains("database failed"), "{message}");
        assert!(flusher.drain().await.unwrap().is_empty(), "nothing is in flight after a failure");
    }
}
