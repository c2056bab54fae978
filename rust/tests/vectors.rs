//! Runs the shared request vectors in tests/vectors/h1/*.json (also run by pytest):
//! each fed whole, one byte at a time, and split in two at every position.

use serde_json::Value;
use std::fs;
use std::path::Path;
use tremolo_core::h1::{Collect, Event, Limits, Parser};

/// What a feed produced, in a form that does not depend on how input was split.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    requests: Vec<Request>,
    /// Some(status) when the parser refused the input.
    error: Option<u16>,
    /// The body of the answer to that refusal.
    answer: Option<&'static str>,
    paused: bool,
}

#[derive(Debug, PartialEq, Eq, Default)]
struct Request {
    method: Vec<u8>,
    target: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
    complete: bool,
}

fn run(pieces: &[&[u8]]) -> Outcome {
    let mut parser = Parser::new(Limits::default());
    let mut sink = Collect::default();
    for p in pieces {
        parser.feed(p, &mut sink);
    }
    let mut out = Outcome {
        requests: Vec::new(),
        error: None,
        answer: None,
        paused: parser.is_paused(),
    };
    for event in sink.0 {
        match event {
            Event::Head(h) => out.requests.push(Request {
                method: h.method().to_vec(),
                target: h.target().to_vec(),
                headers: h
                    .headers
                    .iter()
                    .map(|f| (h.bytes(f.name).to_vec(), h.bytes(f.value).to_vec()))
                    .collect(),
                ..Request::default()
            }),
            Event::Data(d) => out
                .requests
                .last_mut()
                .expect("data before head")
                .body
                .extend(d),
            Event::End(t) => {
                let r = out.requests.last_mut().expect("end before head");
                r.trailers = t;
                r.complete = true;
            }
            Event::Error(e) => {
                out.error = Some(e.status());
                out.answer = Some(e.answer());
            }
        }
    }
    out
}

fn latin1(v: &Value) -> Vec<u8> {
    v.as_str()
        .expect("string")
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
        .collect()
}

fn pairs(v: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    v.as_array().map_or(Vec::new(), |a| {
        a.iter().map(|p| (latin1(&p[0]), latin1(&p[1]))).collect()
    })
}

/// Checks one vector; returns a description of each way it failed.
fn check(case: &Value) -> Vec<String> {
    let name = case["name"].as_str().unwrap_or("?").to_string();
    let input = latin1(&case["input"]);
    let mut problems = Vec::new();
    let whole = run(&[&input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    if run(&bytes) != whole {
        problems.push(format!(
            "{name}: byte-at-a-time differs from whole: {:?}",
            run(&bytes)
        ));
    }
    for i in 1..input.len() {
        let split = run(&[&input[..i], &input[i..]]);
        if split != whole {
            problems.push(format!(
                "{name}: split at {i} differs: {split:?} vs {whole:?}"
            ));
            break;
        }
    }
    let must_parse = name.starts_with("y_");
    match (must_parse, whole.error) {
        (true, Some(s)) => problems.push(format!("{name}: must parse, got {s}")),
        (false, None) => {
            problems.push(format!("{name}: must be rejected, was accepted: {whole:?}"))
        }
        (false, Some(s)) => {
            if let Some(want) = case["status"].as_u64() {
                if u64::from(s) != want {
                    problems.push(format!("{name}: status {s}, want {want}"));
                }
            }
            if let Some(want) = case["answer"].as_str() {
                if whole.answer != Some(want) {
                    problems.push(format!("{name}: answer {:?}, want {want:?}", whole.answer));
                }
            }
        }
        (true, None) => {}
    }
    if let Some(expected) = case["requests"].as_array() {
        let complete: Vec<&Request> = whole.requests.iter().filter(|r| r.complete).collect();
        if complete.len() != expected.len() {
            problems.push(format!(
                "{name}: {} complete requests, want {}",
                complete.len(),
                expected.len()
            ));
        }
        for (got, want) in complete.iter().zip(expected) {
            let mut diffs = Vec::new();
            if got.method != latin1(&want["method"]) {
                diffs.push("method");
            }
            if got.target != latin1(&want["target"]) {
                diffs.push("target");
            }
            if !want["headers"].is_null() && got.headers != pairs(&want["headers"]) {
                diffs.push("headers");
            }
            if got.body != latin1(&want["body"]) {
                diffs.push("body");
            }
            if !want["trailers"].is_null() && got.trailers != pairs(&want["trailers"]) {
                diffs.push("trailers");
            }
            if !diffs.is_empty() {
                problems.push(format!("{name}: {diffs:?} differ: got {got:?}"));
            }
        }
    }
    if case["upgrade"].as_bool().unwrap_or(false) != whole.paused {
        problems.push(format!("{name}: paused for upgrade = {}", whole.paused));
    }
    problems
}

#[test]
fn shared_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/h1");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("vectors dir")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut count = 0;
    let mut problems = Vec::new();
    for file in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let cases: Value = serde_json::from_str(&fs::read_to_string(file).unwrap()).unwrap();
        for case in cases.as_array().expect("a list of vectors") {
            count += 1;
            problems.extend(check(case));
        }
    }
    assert!(count > 100, "only {count} vectors found");
    assert!(
        problems.is_empty(),
        "{} problems in {count} vectors:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
