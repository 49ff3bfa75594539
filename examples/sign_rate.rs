//! The raw signing rate of this machine: aws-lc-rs RS256 and ES256 signatures of a token-sized
//! input on THREADS threads for SECONDS (no JWT, no HTTP) — the ceiling of the token endpoint.
//!
//! `cargo run --release --example sign_rate [THREADS] [SECONDS] [ALG]` (defaults: 2 threads, 5 s,
//! both algorithms).

#![expect(clippy::expect_used, reason = "a benchmark aborts on setup failure")]

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use portcullis::keys::generate::{self, SigningKeyPair};
use portcullis::keys::{RsaKeySize, SigningAlg};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    // An optional third argument measures one algorithm only (`ES256` or `RS256`).
    let only = args.get(3).and_then(|a| SigningAlg::parse(a));
    let input = vec![b'x'; 400];
    for alg in SigningAlg::ALL
        .into_iter()
        .filter(|alg| only.is_none_or(|o| o == *alg))
    {
        let material = generate::generate(alg, RsaKeySize::Rsa2048).expect("key generation");
        let pair = SigningKeyPair::from_material(&material).expect("key pair");
        let pair = std::sync::Arc::new(pair);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (pair, input) = (std::sync::Arc::clone(&pair), input.clone());
                std::thread::spawn(move || {
                    let rng = SystemRandom::new();
                    let mut count = 0u64;
                    while Instant::now() < deadline {
                        match &*pair {
                            SigningKeyPair::Es256(key) => {
                                key.sign(&rng, &input).expect("sign");
                            }
                            SigningKeyPair::Rs256(key) => {
                                let mut signature = vec![0u8; key.public_modulus_len()];
                                key.sign(&RSA_PKCS1_SHA256, &rng, &input, &mut signature)
                                    .expect("sign");
                            }
                        }
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        println!(
            "{alg} raw signing on {threads} threads: {:.0} signatures/s",
            total as f64 / started.elapsed().as_secs_f64()
        );
    }
}
