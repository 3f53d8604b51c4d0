//! Host calls that report failure instead of panicking.
//!
//! The SDK's `hostcalls` wrappers panic on an unexpected status and on non-UTF-8
//! header values; one panic traps the VM for every later request on the worker.
//! These declare the same ABI functions and return errors instead.

use std::ptr::null_mut;

use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};

use crate::shared::SharedData;
use crate::wire;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_get_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *mut *mut u8,
        value_size: *mut usize,
    ) -> Status;
    fn proxy_replace_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_remove_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
    ) -> Status;
    fn proxy_get_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_set_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        size: usize,
        data: *const u8,
        data_size: usize,
    ) -> Status;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> Status;
    fn proxy_define_metric(
        metric_type: MetricType,
        name_data: *const u8,
        name_size: usize,
        id: *mut u32,
    ) -> Status;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> Status;
    fn proxy_record_metric(metric_id: u32, value: u64) -> Status;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> Status;
    fn proxy_log(level: LogLevel, message_data: *const u8, message_size: usize) -> Status;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *mut *mut u8,
        value_size: *mut usize,
        cas: *mut u32,
    ) -> Status;
    fn proxy_set_tick_period_milliseconds(period: u32) -> Status;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> Status;
}

/// A value in the Envoy process's shared data (seen by every worker VM) and its
/// version; `None` if absent.
pub fn shared_data(key: &str) -> HostResult<Option<(Vec<u8>, u32)>> {
    let (mut data, mut size, mut cas) = (null_mut(), 0, 0);
    match unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) }
    {
        Status::Ok => Ok(Some((unsafe { take(data, size) }.unwrap_or_default(), cas))),
        Status::NotFound => Ok(None),
        other => Err(other),
    }
}

/// Stores a shared-data value if it is still at version `cas` (0: unconditionally);
/// `Ok(false)` when another writer came first.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> HostResult<bool> {
    match unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    } {
        Status::Ok => Ok(true),
        Status::CasMismatch => Ok(false),
        other => Err(other),
    }
}

/// Envoy's shared data as the core's [`SharedData`].
pub struct Shared;

impl SharedData for Shared {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, String> {
        shared_data(key).map_err(|status| format!("reading shared data {key}: {status:?}"))
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, String> {
        set_shared_data(key, value, cas)
            .map_err(|status| format!("writing shared data {key}: {status:?}"))
    }
}

pub fn set_tick_period(period_ms: u32) -> HostResult<()> {
    check(unsafe { proxy_set_tick_period_milliseconds(period_ms) })
}

/// Logs through Envoy; a failed log call is dropped, never fatal.
pub fn log(level: LogLevel, message: &str) {
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

pub type HostResult<T> = Result<T, Status>;

fn check(status: Status) -> HostResult<()> {
    match status {
        Status::Ok => Ok(()),
        other => Err(other),
    }
}

/// Takes ownership of a host-allocated buffer (allocated through our
/// `proxy_on_memory_allocate`), or none when the host returned nothing.
///
/// # Safety
/// `data`/`size` must come from a successful host call that allocated them.
unsafe fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    (!data.is_null()).then(|| Vec::from_raw_parts(data, size, size))
}

/// All request headers, values as raw bytes.
pub fn request_headers() -> HostResult<Vec<(String, Vec<u8>)>> {
    header_map(MapType::HttpRequestHeaders)
}

/// The headers of the answer to a `dispatch_http_call`.
pub fn http_call_response_headers() -> HostResult<Vec<(String, Vec<u8>)>> {
    header_map(MapType::HttpCallResponseHeaders)
}

fn header_map(map: MapType) -> HostResult<Vec<(String, Vec<u8>)>> {
    let (mut data, mut size) = (null_mut(), 0);
    check(unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) })?;
    let bytes = unsafe { take(data, size) }.unwrap_or_default();
    let pairs = wire::decode_pairs(&bytes).ok_or(Status::ParseFailure)?;
    Ok(pairs
        .into_iter()
        .map(|(key, value)| (String::from_utf8_lossy(key).into_owned(), value.to_vec()))
        .collect())
}

/// One response header's (first) value, raw; `None` when absent.
pub fn response_header(name: &str) -> HostResult<Option<Vec<u8>>> {
    let (mut data, mut size) = (null_mut(), 0);
    match unsafe {
        proxy_get_header_map_value(
            MapType::HttpResponseHeaders,
            name.as_ptr(),
            name.len(),
            &mut data,
            &mut size,
        )
    } {
        Status::Ok => Ok(Some(unsafe { take(data, size) }.unwrap_or_default())),
        Status::NotFound => Ok(None),
        other => Err(other),
    }
}

pub fn set_request_header(name: &str, value: &str) -> HostResult<()> {
    check(unsafe {
        proxy_replace_header_map_value(
            MapType::HttpRequestHeaders,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn remove_request_header(name: &str) -> HostResult<()> {
    check(unsafe {
        proxy_remove_header_map_value(MapType::HttpRequestHeaders, name.as_ptr(), name.len())
    })
}

pub fn remove_response_header(name: &str) -> HostResult<()> {
    check(unsafe {
        proxy_remove_header_map_value(MapType::HttpResponseHeaders, name.as_ptr(), name.len())
    })
}

/// Replaces bytes `start..start + size` of a body buffer (the current chunk) with `data`.
pub fn set_buffer(
    buffer_type: BufferType,
    start: usize,
    size: usize,
    data: &[u8],
) -> HostResult<()> {
    check(unsafe { proxy_set_buffer_bytes(buffer_type, start, size, data.as_ptr(), data.len()) })
}

pub fn buffer(buffer_type: BufferType, max_size: usize) -> HostResult<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    match unsafe { proxy_get_buffer_bytes(buffer_type, 0, max_size, &mut data, &mut size) } {
        Status::Ok => Ok(unsafe { take(data, size) }.unwrap_or_default()),
        Status::NotFound => Ok(Vec::new()),
        other => Err(other),
    }
}

/// A property as raw bytes; `None` when the host has no value for it.
pub fn property(path: &[&str]) -> HostResult<Option<Vec<u8>>> {
    let encoded = encode_path(path);
    let (mut data, mut size) = (null_mut(), 0);
    match unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) } {
        Status::Ok => Ok(unsafe { take(data, size) }),
        Status::NotFound => Ok(None),
        other => Err(other),
    }
}

/// Writes filter state `wasm.<name>`, which access logs read with `%FILTER_STATE(wasm.<name>:PLAIN)%`.
pub fn set_filter_state(name: &str, value: &[u8]) -> HostResult<()> {
    check(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

fn encode_path(path: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

pub fn send_response(
    status: u32,
    details: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> HostResult<()> {
    let pairs: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    let headers = wire::encode_pairs(&pairs);
    check(unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

pub fn define_counter(name: &str) -> HostResult<u32> {
    define_metric(MetricType::Counter, name)
}

pub fn define_gauge(name: &str) -> HostResult<u32> {
    define_metric(MetricType::Gauge, name)
}

fn define_metric(kind: MetricType, name: &str) -> HostResult<u32> {
    let mut id = 0;
    check(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment(metric: u32, by: i64) -> HostResult<()> {
    check(unsafe { proxy_increment_metric(metric, by) })
}

/// Sets a gauge.
pub fn record(metric: u32, value: u64) -> HostResult<()> {
    check(unsafe { proxy_record_metric(metric, value) })
}

pub fn unix_nanos() -> HostResult<u64> {
    let mut nanos = 0;
    check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}
