//! What the router needs from storage: the catalogue's edited versions
//! (append-only, newest wins) and the history it learns from — closed
//! tickets whose dispatch was never returned, with the department that
//! handled them.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entities::{catalogue_version, ticket};
use super::{Store, StoreError, StoreResult};
use crate::domain::router::Example;
use crate::domain::types::TicketState;

/// A catalogue version without its body, for the list of who changed what when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: i64,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// The newest edited catalogue, if there is any.
    pub async fn latest_catalogue(&self) -> StoreResult<Option<catalogue_version::Model>> {
        Ok(catalogue_version::Entity::find()
            .order_by_desc(catalogue_version::Column::Version)
            .one(&self.db)
            .await?)
    }

    pub async fn catalogue_version(
        &self,
        version: i64,
    ) -> StoreResult<Option<catalogue_version::Model>> {
        Ok(catalogue_version::Entity::find_by_id(version)
            .one(&self.db)
            .await?)
    }

    /// Appends `body` as the version after `base` (0: none yet). A
    /// concurrent edit that got there first makes this a conflict.
    pub async fn add_catalogue_version(
        &self,
        base: i64,
        body: &str,
        author: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let w = self.begin_write().await?;
        let newest = catalogue_version::Entity::find()
            .select_only()
            .column(catalogue_version::Column::Version)
            .order_by_desc(catalogue_version::Column::Version)
            .into_tuple::<i64>()
            .one(&w.txn)
            .await?
            .unwrap_or(0);
        if newest != base {
            return Err(StoreError::Conflict(format!(
                "the catalogue changed meanwhile (now version {newest}); reload and edit that"
            )));
        }
        let version = base + 1;
        let row = catalogue_version::ActiveModel {
            version: Set(version),
            body: Set(body.to_owned()),
            author: Set(author.to_owned()),
            created_at: Set(now),
        };
        catalogue_version::Entity::insert(row)
            .exec_without_returning(&w.txn)
            .await
            .map_err(|e| match StoreError::from(e) {
                e if e.is_unique_violation() => {
                    StoreError::Conflict("the catalogue changed meanwhile; reload".into())
                }
                e => e,
            })?;
        w.commit().await?;
        Ok(version)
    }

    /// Catalogue versions, newest first, and how many there are.
    pub async fn catalogue_versions(
        &self,
        limit: u64,
        offset: u64,
    ) -> StoreResult<(Vec<VersionInfo>, u64)> {
        use catalogue_version::Column as C;
        let total = catalogue_version::Entity::find().count(&self.db).await?;
        let rows = catalogue_version::Entity::find()
            .select_only()
            .columns([C::Version, C::Author, C::CreatedAt])
            .order_by_desc(C::Version)
            .limit(limit)
            .offset(offset)
            .into_tuple::<(i64, String, DateTime<Utc>)>()
            .all(&self.db)
            .await?;
        let items = rows
            .into_iter()
            .map(|(version, author, created_at)| VersionInfo {
                version,
                author,
                created_at,
            })
            .collect();
        Ok((items, total))
    }

    /// Up to `limit` training examples with ticket ids above `after`, in id
    /// order, and the last id read: closed tickets never returned, labelled
    /// with their final lead department.
    pub async fn routing_history(
        &self,
        after: i64,
        limit: u64,
    ) -> StoreResult<(Vec<Example>, Option<i64>)> {
        use ticket::Column as C;
        type Row = (
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = ticket::Entity::find()
            .select_only()
            .columns([
                C::Id,
                C::Title,
                C::Content,
                C::District,
                C::Address,
                C::Department,
            ])
            .filter(C::Id.gt(after))
            .filter(C::State.eq(TicketState::Closed.as_str()))
            .filter(C::ReturnCount.eq(0))
            .filter(C::Department.is_not_null())
            .order_by_asc(C::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        let last = rows.last().map(|r| r.0);
        let examples = rows
            .into_iter()
            .filter_map(|(_, title, content, district, address, department)| {
                Some(Example {
                    title,
                    content,
                    district,
                    address,
                    department: department?,
                })
            })
            .collect();
        Ok((examples, last))
    }
}
