//! Lua scripts, hashed once and sent by hash.

use redis::ToRedisArgs;
use std::fmt;
use std::sync::OnceLock;

/// A Lua script a feature runs on the store, with a name for metrics and logs.
///
/// `const`, so a feature keeps its scripts in `static`s; the SHA-1 is computed the first time the
/// script runs. [`RedisStore::invoke`](super::RedisStore::invoke) sends `EVALSHA`, and on
/// `NOSCRIPT` (a restarted or flushed server) `SCRIPT LOAD` and `EVALSHA` again, within the same
/// timeout, so each server compiles the script once.
///
/// ```
/// use orchestrate_runtime::store::Script;
/// static INCR_TO: Script = Script::new("incr_to", r#"
///     local n = redis.call('INCR', KEYS[1])
///     if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
///     return n
/// "#);
/// assert_eq!(INCR_TO.name(), "incr_to");
/// let _call = INCR_TO.key("orchestrate:hits").arg(60_000);
/// ```
pub struct Script {
    name: &'static str,
    code: &'static str,
    script: OnceLock<redis::Script>,
}

impl Script {
    /// The script `code`, called `name` in metrics (`operation="script:<name>"`) and logs.
    pub const fn new(name: &'static str, code: &'static str) -> Self {
        Self { name, code, script: OnceLock::new() }
    }

    /// Its name.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::store::Script::new("noop", "return 0").name(), "noop");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The SHA-1 of its code, as `EVALSHA` takes it.
    ///
    /// ```
    /// let script = orchestrate_runtime::store::Script::new("one", "return 1");
    /// assert_eq!(script.hash(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    /// ```
    pub fn hash(&self) -> &str {
        self.redis().get_hash()
    }

    /// An invocation with `key` as its first key (`KEYS[1]`).
    ///
    /// ```
    /// use orchestrate_runtime::store::Script;
    /// static GET: Script = Script::new("get", "return redis.call('GET', KEYS[1])");
    /// let _call = GET.key("orchestrate:a");
    /// ```
    pub fn key<T: ToRedisArgs>(&self, key: T) -> Invocation<'_> {
        self.prepare().key(key)
    }

    /// An invocation with `arg` as its first argument (`ARGV[1]`).
    ///
    /// ```
    /// use orchestrate_runtime::store::Script;
    /// static ADD: Script = Script::new("add", "return ARGV[1] + ARGV[2]");
    /// let _call = ADD.arg(1).arg(2);
    /// ```
    pub fn arg<T: ToRedisArgs>(&self, arg: T) -> Invocation<'_> {
        self.prepare().arg(arg)
    }

    /// An invocation without keys or arguments yet.
    ///
    /// ```
    /// use orchestrate_runtime::store::Script;
    /// static PING: Script = Script::new("ping", "return redis.call('PING')");
    /// let _call = PING.prepare();
    /// ```
    pub fn prepare(&self) -> Invocation<'_> {
        Invocation { name: self.name, invocation: self.redis().prepare_invoke() }
    }

    fn redis(&self) -> &redis::Script {
        self.script.get_or_init(|| redis::Script::new(self.code))
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script").field("name", &self.name).finish_non_exhaustive()
    }
}

/// One run of a [`Script`] with its keys and arguments, for
/// [`RedisStore::invoke`](super::RedisStore::invoke).
///
/// ```
/// use orchestrate_runtime::store::Script;
/// static SET_IF: Script = Script::new("set_if", "return redis.call('SET', KEYS[1], ARGV[1], 'NX')");
/// let _call = SET_IF.key("orchestrate:lock").arg("owner-1");
/// ```
pub struct Invocation<'a> {
    name: &'static str,
    invocation: redis::ScriptInvocation<'a>,
}

impl Invocation<'_> {
    /// Adds a key (`KEYS[n]`).
    ///
    /// ```
    /// # use orchestrate_runtime::store::Script;
    /// # static S: Script = Script::new("s", "return #KEYS");
    /// let _call = S.prepare().key("orchestrate:a").key("orchestrate:b");
    /// ```
    pub fn key<T: ToRedisArgs>(mut self, key: T) -> Self {
        self.invocation.key(key);
        self
    }

    /// Adds an argument (`ARGV[n]`).
    ///
    /// ```
    /// # use orchestrate_runtime::store::Script;
    /// # static S: Script = Script::new("s", "return #ARGV");
    /// let _call = S.prepare().arg(1).arg("two");
    /// ```
    pub fn arg<T: ToRedisArgs>(mut self, arg: T) -> Self {
        self.invocation.arg(arg);
        self
    }

    /// The script's name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The invocation for redis-rs.
    pub(crate) fn redis(&self) -> &redis::ScriptInvocation<'_> {
        &self.invocation
    }
}

impl fmt::Debug for Invocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys and arguments may carry user data: only the script is named.
        f.debug_struct("Invocation").field("script", &self.name).finish_non_exhaustive()
    }
}
