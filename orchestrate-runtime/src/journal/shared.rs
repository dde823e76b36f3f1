//! The journal in the shared store: `saga:record:<id>`, `saga:lease:<id>`, `saga:open`.

use super::{JournalResult, SagaRecord, millis};
use crate::store::{RedisStore, Script, StoreError};
use std::time::Duration;

#[derive(Debug, Clone)]
pub(super) struct Records(RedisStore);

/// Writes the record (`KEYS[1]`) unless another owner holds the lease (`KEYS[2]`); while the saga
/// is open (`ARGV[5] == '1'`) renews the lease and marks it open (`KEYS[3]`), else releases both.
static WRITE: Script = Script::new(
    "saga_write",
    r"
    local holder = redis.call('GET', KEYS[2])
    if holder and holder ~= ARGV[2] then return 0 end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
    if ARGV[5] == '1' then
        redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
        redis.call('SADD', KEYS[3], ARGV[6])
    else
        redis.call('DEL', KEYS[2])
        redis.call('SREM', KEYS[3], ARGV[6])
    end
    return 1
    ",
);

/// Extends the lease (`KEYS[1]`) if `ARGV[1]` holds it.
static RENEW: Script = Script::new(
    "saga_renew",
    r"
    if redis.call('GET', KEYS[1]) == ARGV[1] then
        return redis.call('PEXPIRE', KEYS[1], ARGV[2])
    end
    return 0
    ",
);

impl Records {
    pub(super) fn new(redis: RedisStore) -> Self {
        Self(redis)
    }

    fn record_key(&self, id: &str) -> String {
        self.0.key(&["saga", "record", id])
    }

    fn lease_key(&self, id: &str) -> String {
        self.0.key(&["saga", "lease", id])
    }

    fn open_key(&self) -> String {
        self.0.key(&["saga", "open"])
    }

    pub(super) async fn get(&self, id: &str) -> JournalResult<Option<SagaRecord>> {
        let json: Option<String> = self.0.query(redis::cmd("GET").arg(self.record_key(id))).await?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|error| StoreError::Reply {
                operation: "GET".to_owned(),
                code: None,
                message: format!("a saga record that does not read: {error}"),
            })
        })
        .transpose()
    }

    pub(super) async fn write(
        &self,
        record: &SagaRecord,
        owner: &str,
        lease: Duration,
        ttl: Duration,
    ) -> JournalResult<bool> {
        let json = serde_json::to_string(record).unwrap_or_default();
        let id = &record.request_id;
        let open = if record.state.ended() { "0" } else { "1" };
        let invocation = WRITE
            .key(self.record_key(id))
            .key(self.lease_key(id))
            .key(self.open_key())
            .arg(json)
            .arg(owner)
            .arg(millis(lease))
            .arg(millis(ttl))
            .arg(open)
            .arg(id.as_str());
        Ok(self.0.invoke::<i64>(&invocation).await? == 1)
    }

    pub(super) async fn claim(&self, id: &str, owner: &str, lease: Duration) -> JournalResult<bool> {
        let mut set = redis::cmd("SET");
        set.arg(self.lease_key(id)).arg(owner).arg("NX").arg("PX").arg(millis(lease));
        Ok(self.0.query::<Option<String>>(&set).await?.is_some())
    }

    pub(super) async fn renew(&self, id: &str, owner: &str, lease: Duration) -> JournalResult<bool> {
        Ok(self.0.invoke::<i64>(&RENEW.key(self.lease_key(id)).arg(owner).arg(millis(lease))).await? == 1)
    }

    pub(super) async fn open(&self) -> JournalResult<Vec<String>> {
        self.0.query(redis::cmd("SMEMBERS").arg(self.open_key())).await
    }

    pub(super) async fn forget(&self, id: &str) -> JournalResult<()> {
        self.0.query(redis::cmd("SREM").arg(self.open_key()).arg(id)).await
    }
}
