//! A workspace's field mappings per (integration, entity). None stored means the plugin's defaults.

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::{Store, StoreResult, with_pool};
use crate::domain::{EntityName, PluginSlug, WorkspaceId};

/// A stored mapping.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StoredMapping {
    /// The entity.
    pub entity: String,
    /// The workspace record's field.
    pub app_field: String,
    /// The CRM's field.
    pub crm_field: String,
    /// `push` | `pull` | `both` | `none`.
    pub direction: String,
    /// The transform, as JSON (a name, or an object for value maps and date formats).
    pub transform: Option<Json<Value>>,
    /// The entity whose workspace record ids this field holds, for a reference mapping.
    #[sqlx(rename = "references_entity")]
    pub references: Option<String>,
}

impl Store {
    /// The stored mappings of an integration, for one entity or all, ordered by entity and app field.
    #[tracing::instrument(name = "store.mappings", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn mappings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: Option<&EntityName>,
    ) -> StoreResult<Vec<StoredMapping>> {
        let sql = "select entity, app_field, crm_field, direction, transform, references_entity from integration_field_mappings \
                   where workspace_id = $1 and integration_slug = $2 and ($3 = '' or entity = $3) \
                   order by entity, app_field";
        let rows = with_pool!(self, pool => sqlx::query_as::<_, StoredMapping>(sql)
            .bind(workspace.as_str())
            .bind(slug.as_str())
            .bind(entity.map(EntityName::as_str).unwrap_or(""))
            .fetch_all(pool)
            .await)?;
        Ok(rows)
    }

    /// Replaces an entity's mappings in one transaction (an empty list goes back to the defaults).
    #[tracing::instrument(name = "store.replace_mappings", skip_all, fields(workspace = %workspace, slug = %slug, entity = %entity))]
    pub async fn replace_mappings(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        entity: &EntityName,
        mappings: &[StoredMapping],
    ) -> StoreResult<()> {
        let now = Utc::now();
        let delete =
            "delete from integration_field_mappings where workspace_id = $1 and integration_slug = $2 and entity = $3";
        let insert = "insert into integration_field_mappings \
                      (workspace_id, integration_slug, entity, app_field, crm_field, direction, transform, references_entity, \
                      updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_statement()).await?;
            sqlx::query(delete).bind(workspace.as_str()).bind(slug.as_str()).bind(entity.as_str())
                .execute(&mut *tx).await?;
            for m in mappings {
                sqlx::query(insert)
                    .bind(workspace.as_str())
                    .bind(slug.as_str())
                    .bind(entity.as_str())
                    .bind(&m.app_field)
                    .bind(&m.crm_field)
                    .bind(&m.direction)
                    .bind(m.transform.as_ref())
                    .bind(m.references.as_deref())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
