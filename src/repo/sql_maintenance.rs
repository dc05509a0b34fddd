//! What operating the server reads: the outbox's size (metrics) and every avatar
//! id a row references (the blob garbage collector). Every statement once, for
//! both engines.

/// Implements `MaintenanceStore` for `$repo` (a struct with a
/// `pool` and a `writer` `sqlx::Pool<$db>` field).
macro_rules! impl_maintenance {
    ($repo:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::domain::MaintenanceStore for $repo {
            async fn outbox_stats(
                &self,
            ) -> Result<$crate::domain::OutboxStats, $crate::domain::StoreError> {
                let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT state, COUNT(*), MIN(created_at), MAX(attempts) FROM outbox \
                     WHERE state IN ('pending', 'failed') GROUP BY state",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut stats = $crate::domain::OutboxStats::default();
                for (state, count, oldest, attempts) in rows {
                    let count = u64::try_from(count).unwrap_or(0);
                    if state == "pending" {
                        stats.pending = count;
                        stats.oldest_pending_created_at = oldest;
                        stats.max_pending_attempts = attempts.unwrap_or(0);
                    } else {
                        stats.failed = count;
                    }
                }
                Ok(stats)
            }

            async fn avatar_references(&self) -> Result<Vec<String>, $crate::domain::StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM avatars \
                     UNION SELECT avatar_id FROM accounts \
                     UNION SELECT avatar_id FROM avatar_history \
                     UNION SELECT avatar_id FROM avatar_sources \
                     UNION SELECT scan_avatar_id FROM login_sessions \
                     WHERE scan_avatar_id IS NOT NULL",
                )
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(super) use impl_maintenance;
