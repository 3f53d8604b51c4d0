//! Envoy's shared data as the core sees it: one key-value store per Envoy process, with compare-and-swap.
//!
//! Revocation, session history and the risk feed all keep their state here through
//! one typed model: a [`Stored`] key with a [`Codec`], read, written and updated
//! (compare-and-swap, decide again on a lost race) the same way, with one failure
//! policy: an entry that cannot be read or does not decode is a [`StateError`],
//! and every caller turns it into a refusal that names the key (fails closed).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

/// A value and the version (`cas`) it was read at.
pub type Versioned = (Vec<u8>, u32);

/// Shared data, as every worker VM of one Envoy process sees it. The glue implements
/// it with host calls; [`Memory`] stands in for it in tests and the CLI.
pub trait SharedData {
    /// The value under `key` and its version, or `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Versioned>, String>;
    /// Stores `value` if the entry is still at version `cas` (0: unconditionally;
    /// a missing key is always created). `Ok(false)` when another writer came first.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, String>;
}

/// Why toolgate's own state in shared data cannot be used. Callers fail closed on
/// every one of them: a request is refused with `internal_error` and this as its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// The host could not read or write the entry, or the value could not be encoded.
    Unavailable { key: String, error: String },
    /// The entry holds bytes that do not decode as what toolgate stores there.
    Corrupt { key: String, error: String },
    /// Other workers kept writing the entry first; `attempts` writes were lost.
    Contended { key: String, attempts: u32 },
}

impl StateError {
    /// The shared-data key the error is about.
    pub fn key(&self) -> &str {
        match self {
            Self::Unavailable { key, .. }
            | Self::Corrupt { key, .. }
            | Self::Contended { key, .. } => key,
        }
    }

    /// Times decided again before giving up (0 unless [`StateError::Contended`]).
    pub fn conflicts(&self) -> u32 {
        match self {
            Self::Contended { attempts, .. } => attempts.saturating_sub(1),
            _ => 0,
        }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable { key, error } => {
                write!(f, "shared data {key} cannot be used: {error}")
            }
            Self::Corrupt { key, error } => write!(
                f,
                "shared data {key} is corrupt ({error}); toolgate refuses what depends on it \
                 until it is rewritten or expires (restarting Envoy clears shared data)"
            ),
            Self::Contended { key, attempts } => write!(
                f,
                "shared data {key} stayed contended: {attempts} writes lost to other workers"
            ),
        }
    }
}

/// For the callers that gather errors as text (the decision record's `errors`).
impl From<StateError> for String {
    fn from(error: StateError) -> Self {
        error.to_string()
    }
}

/// How one kind of state is stored under a shared-data key.
pub trait Codec {
    /// The decoded value; it may borrow the key and the bytes it was decoded from.
    type Value<'a>;
    /// Decodes the bytes stored under `key`; the error says what is wrong with them.
    fn decode<'a>(key: &'a str, bytes: &'a [u8]) -> Result<Self::Value<'a>, String>;
    fn encode(value: &Self::Value<'_>) -> Result<Vec<u8>, String>;
}

/// A shared-data key holding a value stored with codec `C`.
pub struct Stored<C> {
    key: String,
    codec: PhantomData<fn() -> C>,
}

impl<C: Codec> Stored<C> {
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            codec: PhantomData,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The entry's bytes and version, `None` when there is none; a failed host read
    /// is [`StateError::Unavailable`].
    pub fn load(&self, shared: &dyn SharedData) -> Result<Option<Versioned>, StateError> {
        shared
            .get(&self.key)
            .map_err(|error| self.unavailable(error))
    }

    /// Decodes bytes read from this entry; bytes that do not decode are [`StateError::Corrupt`].
    pub fn decode<'a>(&'a self, bytes: &'a [u8]) -> Result<C::Value<'a>, StateError> {
        C::decode(&self.key, bytes).map_err(|error| self.corrupt(error))
    }

    /// The entry's value and version, `None` when there is none.
    pub fn read<T>(&self, shared: &dyn SharedData) -> Result<Option<(T, u32)>, StateError>
    where
        C: for<'a> Codec<Value<'a> = T>,
    {
        match self.load(shared)? {
            None => Ok(None),
            Some((bytes, cas)) => Ok(Some((self.decode(&bytes)?, cas))),
        }
    }

    /// Stores `value` if the entry is still at version `cas` (0: unconditionally).
    /// `Ok(false)` when another writer came first.
    pub fn write(
        &self,
        shared: &dyn SharedData,
        value: &C::Value<'_>,
        cas: u32,
    ) -> Result<bool, StateError> {
        let bytes =
            C::encode(value).map_err(|e| self.unavailable(format!("cannot encode: {e}")))?;
        shared
            .set(&self.key, &bytes, cas)
            .map_err(|error| self.unavailable(error))
    }

    /// A [`StateError::Corrupt`] for this entry, for codecs that decode lazily.
    pub fn corrupt(&self, error: impl Into<String>) -> StateError {
        corrupt(&self.key, error)
    }

    fn unavailable(&self, error: String) -> StateError {
        StateError::Unavailable {
            key: self.key.clone(),
            error,
        }
    }
}

/// A [`StateError::Corrupt`] for `key`.
pub fn corrupt(key: &str, error: impl Into<String>) -> StateError {
    StateError::Corrupt {
        key: key.to_owned(),
        error: error.into(),
    }
}

/// What [`update`] ended with.
#[derive(Debug)]
pub struct Updated<R> {
    /// What the last attempt's `change` returned.
    pub outcome: R,
    /// The value was written back (`change` asked for it, and the write won).
    pub written: bool,
    /// Attempts decided again because another worker wrote first.
    pub conflicts: u32,
}

/// Reads the entry (its default when absent), lets `change` decide on the value,
/// and writes the value back when `change` says so, with a compare-and-swap
/// against the version read. When another worker wrote first, reads and decides
/// again on what it wrote, up to `max_conflicts` times, then gives up
/// ([`StateError::Contended`]). Envoy creates a missing key whatever the version,
/// so entries that are updated concurrently are created up front.
pub fn update<C, R>(
    shared: &dyn SharedData,
    entry: &Stored<C>,
    max_conflicts: u32,
    mut change: impl FnMut(&mut C::Value<'_>) -> (R, bool),
) -> Result<Updated<R>, StateError>
where
    C: Codec,
    for<'a> C::Value<'a>: Default,
{
    let mut conflicts = 0;
    loop {
        let loaded = entry.load(shared)?;
        let (mut value, cas) = match &loaded {
            None => (C::Value::default(), 0),
            Some((bytes, cas)) => (entry.decode(bytes)?, *cas),
        };
        let (outcome, write) = change(&mut value);
        let written = write && entry.write(shared, &value, cas)?;
        if written || !write {
            return Ok(Updated {
                outcome,
                written,
                conflicts,
            });
        }
        if conflicts >= max_conflicts {
            return Err(StateError::Contended {
                key: entry.key.clone(),
                attempts: conflicts + 1,
            });
        }
        conflicts += 1;
    }
}

/// A value stored as its text (`Display`, read back with `FromStr`), e.g. a time.
pub struct Text<T>(PhantomData<fn() -> T>);

impl<T: std::str::FromStr + fmt::Display> Codec for Text<T> {
    type Value<'a> = T;

    fn decode<'a>(_key: &'a str, bytes: &'a [u8]) -> Result<T, String> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| {
                format!(
                    "expected a {}, found {:?}",
                    std::any::type_name::<T>(),
                    String::from_utf8_lossy(bytes)
                )
            })
    }

    fn encode(value: &T) -> Result<Vec<u8>, String> {
        Ok(value.to_string().into_bytes())
    }
}

/// A value stored as JSON.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec for Json<T> {
    type Value<'a> = T;

    fn decode<'a>(_key: &'a str, bytes: &'a [u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not the JSON expected: {e}"))
    }

    fn encode(value: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }
}

/// An in-memory [`SharedData`] with Envoy's semantics, for tests and the CLI.
#[derive(Default)]
pub struct Memory {
    entries: RefCell<HashMap<String, Versioned>>,
    last_cas: Cell<u32>,
}

impl Memory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SharedData for Memory {
    fn get(&self, key: &str) -> Result<Option<Versioned>, String> {
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, String> {
        let mut entries = self.entries.borrow_mut();
        if let Some((_, current)) = entries.get(key) {
            if cas != 0 && cas != *current {
                return Ok(false);
            }
        }
        let next = self.last_cas.get().wrapping_add(1).max(1);
        self.last_cas.set(next);
        entries.insert(key.to_owned(), (value.to_vec(), next));
        Ok(true)
    }
}

/// Claims a periodic job (a sweep, a poll) for this worker: true when the last
/// claim under `key` is at least `interval_ns` old and this worker's
/// compare-and-swap won, so one worker of the process runs it per interval.
pub fn claim(
    shared: &dyn SharedData,
    key: &str,
    now_ns: u64,
    interval_ns: u64,
) -> Result<bool, StateError> {
    let entry = Stored::<Text<u64>>::new(key);
    let (last, cas) = match entry.load(shared)? {
        None => (0, 0),
        // A claim only schedules work, it guards nothing: a corrupt one is taken
        // over, else the job (and with it every sweep or poll) would never run again.
        Some((bytes, cas)) => (entry.decode(&bytes).unwrap_or(0), cas),
    };
    if now_ns.saturating_sub(last) < interval_ns {
        return Ok(false);
    }
    entry.write(shared, &now_ns, cas)
}
