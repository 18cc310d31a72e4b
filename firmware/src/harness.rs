//! The on-target test and benchmark harness shared by the `verify` and `bench` binaries.
//!
//! The host (`tinyrnn verify`, `tinyrnn bench`) writes `firmware/generated/<bin>/cases.rs`:
//! one module per model (`pub mod case_0 { include!("case_0.rs"); }`, each file written by
//! `tinyrnn export` with golden data) and a `define_cases! { (case_0, "name", stream), … }`
//! invocation. The binary defines `define_cases!` with [`model_case!`] to build a table of
//! `&dyn Case` and hands it to [`run_cases`], so one firmware build carries many models.
//!
//! For each case, [`run_cases`]:
//! 1. runs the model over its input — the in-flash golden input, or (`stream`) samples read one
//!    at a time from the host file `case<i>.in` through semihosting — and writes every step's
//!    outputs to the host file `case<i>.out` (the host compares every output of every step);
//!    on golden input it also compares with the in-flash expected outputs itself. When the host
//!    also wrote `case<i>.seq` (one length word per recording), the streamed input is a series
//!    of recordings: the state is reset before each, and the class at its last step (argmax of
//!    the outputs) is logged as `class case=… recording=… steps=… class=…`;
//! 2. counts instructions per step: SysTick ticks of 2N minus N steps over the in-flash input
//!    (no I/O inside the measured loop);
//! 3. measures the stack high-water of one step: the free stack is painted with a pattern,
//!    the model's own `step` runs once (called through `step_probe`, whose frame is counted;
//!    no copy of the outputs), the lowest overwritten word gives the depth below the caller's SP;
//! 4. logs `case …` / `result …` lines through defmt, which the host parses.
//!
//! Files hold little-endian 32-bit words: `f32` bits, or integers sign-extended to 32 bits.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;

use semihosting::io::{Read, Write};

use crate::icount::InstructionCounter;

/// An element of a model's input or output, as a 32-bit word in files and comparisons.
pub trait Word: Copy + Default {
    /// The 32-bit word (`f32` bits, or the integer sign-extended).
    fn to_word(self) -> u32;
    /// The value from its word.
    fn from_word(word: u32) -> Self;
    /// Whether an output `got` equals `expected`: exactly for integers; for `f32` equal bits or
    /// within 1e-5 absolute.
    fn matches(got: u32, expected: u32) -> bool;
}

impl Word for f32 {
    fn to_word(self) -> u32 {
        self.to_bits()
    }
    fn from_word(word: u32) -> Self {
        f32::from_bits(word)
    }
    fn matches(got: u32, expected: u32) -> bool {
        let (a, b) = (f32::from_bits(got), f32::from_bits(expected));
        got == expected || (if a >= b { a - b } else { b - a }) <= 1e-5
    }
}

impl Word for i16 {
    fn to_word(self) -> u32 {
        i32::from(self) as u32
    }
    fn from_word(word: u32) -> Self {
        word as i32 as i16
    }
    fn matches(got: u32, expected: u32) -> bool {
        got == expected
    }
}

impl Word for i32 {
    fn to_word(self) -> u32 {
        self as u32
    }
    fn from_word(word: u32) -> Self {
        word as i32
    }
    fn matches(got: u32, expected: u32) -> bool {
        got == expected
    }
}

/// [`Case::argmax`] of output words holding values of type `T`; one copy per type, not per case.
#[inline(never)]
pub fn argmax_of_words<T: Word + PartialOrd>(out: &[u32]) -> usize {
    tinyrnn::argmax(out.iter().map(|&w| T::from_word(w))).unwrap_or(0)
}

/// Most inputs or outputs per step a case may have (sizes the harness's word buffers).
pub const MAX_WORDS: usize = 64;

/// One generated model, seen through 32-bit words so the harness is not generic.
pub trait Case: Sync {
    /// Name given by the host.
    fn name(&self) -> &'static str;
    /// Whether the input is streamed from the host file instead of the in-flash golden input.
    fn stream(&self) -> bool;
    /// Inputs per step.
    fn inputs(&self) -> usize;
    /// Outputs per step.
    fn outputs(&self) -> usize;
    /// Steps of in-flash golden data.
    fn golden_steps(&self) -> usize;
    /// Bytes of the model's weights (`size_of_val(&MODEL)`).
    fn weights_bytes(&self) -> usize;
    /// Bytes of in-flash golden data (test vectors, not part of a deployed model).
    fn golden_bytes(&self) -> usize;
    /// Bytes of the model's state.
    fn state_bytes(&self) -> usize;
    /// Returns the state to zero.
    fn reset(&self);
    /// One step on golden input `k`; writes the output words to `out`.
    fn step_golden(&self, k: usize, out: &mut [u32]);
    /// Expected output words of golden step `k`.
    fn expected(&self, k: usize, out: &mut [u32]);
    /// One step on the input words `x`; writes the output words to `out`.
    fn step_words(&self, x: &[u32], out: &mut [u32]);
    /// Whether an output word matches the expected word.
    fn matches(&self, got: u32, expected: u32) -> bool;
    /// `n` steps cycling over the golden input, outputs discarded (the timed loop).
    fn run(&self, n: u32);
    /// One step on golden input 0 through the model's own `step` (no copy of its outputs):
    /// the call whose stack high-water is measured.
    fn step_probe(&self);
    /// The class a classifier predicts from its head's outputs `out` (as words):
    /// [`tinyrnn::argmax`] of their values, whose NaN never wins; 0 when none is a number, as
    /// the host's evaluation counts it.
    fn argmax(&self, out: &[u32]) -> usize;
}

/// A model's state in a `static` (so it counts as static RAM, like in an application).
pub struct StateCell<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY: the firmware is single-threaded and the state is never touched from an interrupt.
unsafe impl<T> Sync for StateCell<T> {}

impl<T: Default> StateCell<T> {
    /// An uninitialised cell; [`StateCell::reset`] before [`StateCell::get`].
    pub const fn new() -> Self {
        Self(UnsafeCell::new(MaybeUninit::uninit()))
    }

    /// Sets the state to its default (zero).
    pub fn reset(&self) {
        // SAFETY: single-threaded; no reference from `get` is alive across calls.
        unsafe { (*self.0.get()).write(T::default()) };
    }

    /// The state.
    ///
    /// # Safety
    /// [`StateCell::reset`] was called before, and the returned reference is dropped before the
    /// next call (single-threaded use only).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        unsafe { (*self.0.get()).assume_init_mut() }
    }
}

impl<T: Default> Default for StateCell<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds `fn cases()`, the table of cases, from the `define_cases!((module, name, stream), …)`
/// invocation the host writes into `firmware/generated/<bin>/cases.rs`.
#[macro_export]
macro_rules! define_cases {
    ($(($m:ident, $name:expr, $stream:expr)),* $(,)?) => {
        fn cases() -> &'static [&'static dyn $crate::harness::Case] {
            static CASES: &[&dyn $crate::harness::Case] = &[$($crate::model_case!($m, $name, $stream)),*];
            CASES
        }
    };
}

/// Implements [`Case`] for a generated model module `$m` and evaluates to a `&'static dyn Case`.
#[macro_export]
macro_rules! model_case {
    ($m:ident, $name:expr, $stream:expr) => {{
        struct ThisCase;
        static STATE: $crate::harness::StateCell<$m::State> = $crate::harness::StateCell::new();
        const _: () = assert!($m::INPUTS <= $crate::harness::MAX_WORDS);
        const _: () = assert!($m::OUTPUTS <= $crate::harness::MAX_WORDS);
        const _: () = assert!($m::GOLDEN_STEPS > 0);
        impl $crate::harness::Case for ThisCase {
            fn name(&self) -> &'static str {
                $name
            }
            fn stream(&self) -> bool {
                $stream
            }
            fn inputs(&self) -> usize {
                $m::INPUTS
            }
            fn outputs(&self) -> usize {
                $m::OUTPUTS
            }
            fn golden_steps(&self) -> usize {
                $m::GOLDEN_STEPS
            }
            fn weights_bytes(&self) -> usize {
                core::mem::size_of_val(&$m::MODEL)
            }
            fn golden_bytes(&self) -> usize {
                core::mem::size_of_val(&$m::GOLDEN_INPUT)
                    + core::mem::size_of_val(&$m::GOLDEN_OUTPUT)
            }
            fn state_bytes(&self) -> usize {
                core::mem::size_of::<$m::State>()
            }
            fn reset(&self) {
                STATE.reset();
            }
            fn step_golden(&self, k: usize, out: &mut [u32]) {
                // SAFETY: `reset` runs before every sequence; single-threaded.
                let state = unsafe { STATE.get() };
                let y = $m::step(state, &$m::GOLDEN_INPUT[k]);
                for (o, v) in out.iter_mut().zip(y) {
                    *o = $crate::harness::Word::to_word(v);
                }
            }
            fn expected(&self, k: usize, out: &mut [u32]) {
                for (o, &v) in out.iter_mut().zip(&$m::GOLDEN_OUTPUT[k]) {
                    *o = $crate::harness::Word::to_word(v);
                }
            }
            fn step_words(&self, x: &[u32], out: &mut [u32]) {
                let mut input = [<$m::Act as Default>::default(); $m::INPUTS];
                for (i, &w) in input.iter_mut().zip(x) {
                    *i = <$m::Act as $crate::harness::Word>::from_word(w);
                }
                // SAFETY: as above.
                let state = unsafe { STATE.get() };
                let y = $m::step(state, &input);
                for (o, v) in out.iter_mut().zip(y) {
                    *o = $crate::harness::Word::to_word(v);
                }
            }
            fn matches(&self, got: u32, expected: u32) -> bool {
                <$m::Out as $crate::harness::Word>::matches(got, expected)
            }
            fn argmax(&self, out: &[u32]) -> usize {
                $crate::harness::argmax_of_words::<$m::Out>(out)
            }
            #[inline(never)]
            fn step_probe(&self) {
                // SAFETY: as above.
                let state = unsafe { STATE.get() };
                core::hint::black_box($m::step_ref(
                    state,
                    core::hint::black_box(&$m::GOLDEN_INPUT[0]),
                ));
            }
            #[inline(never)]
            fn run(&self, n: u32) {
                // SAFETY: as above.
                let state = unsafe { STATE.get() };
                let mut k = 0;
                for _ in 0..n {
                    let y = $m::step(state, core::hint::black_box(&$m::GOLDEN_INPUT[k]));
                    core::hint::black_box(y);
                    k += 1;
                    if k == $m::GOLDEN_STEPS {
                        k = 0;
                    }
                }
            }
        }
        &ThisCase as &'static dyn $crate::harness::Case
    }};
}

/// Pattern painted over the free stack before a measured step.
const PAINT: u32 = 0xA5C3_5A3C;
/// Largest stack region painted below the caller (bytes).
const PAINT_LIMIT: usize = 48 * 1024;
/// Bytes left unpainted just below the current stack pointer: the painting loop runs in this
/// function's frame (allocated above it), so this is only a guard; a step that uses less
/// reads as this many bytes.
const PAINT_MARGIN: usize = 16;

extern "C" {
    /// Lowest address of the stack (end of static RAM), from cortex-m-rt's `link.x`.
    static _stack_end: u32;
}

/// Paints the free stack, runs `f` and returns the bytes of stack it used below the stack
/// pointer at the call, or `None` if it reached the unpainted margin (measurement invalid).
#[inline(never)]
fn stack_used(f: impl FnOnce()) -> Option<usize> {
    let sp = cortex_m::register::msp::read() as usize;
    // Only the address of the linker symbol is taken.
    let floor = core::ptr::addr_of!(_stack_end) as usize;
    let top = (sp - PAINT_MARGIN) & !3;
    let bottom = top.saturating_sub(PAINT_LIMIT).max(floor);
    let mut addr = bottom;
    while addr < top {
        // SAFETY: [bottom, top) lies between the end of static RAM and the live stack frames.
        unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
    f();
    let mut addr = bottom;
    while addr < top {
        // SAFETY: as above.
        if unsafe { core::ptr::read_volatile(addr as *const u32) } != PAINT {
            break;
        }
        addr += 4;
    }
    if addr == bottom {
        return None;
    }
    Some(sp - addr)
}

/// `prefix` + decimal `index` + `suffix` + NUL, in `buf`.
fn file_name<'b>(buf: &'b mut [u8; 32], index: usize, suffix: &[u8]) -> &'b core::ffi::CStr {
    let mut digits = [0u8; 10];
    let mut n = index;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut at = 0;
    for &b in b"case" {
        buf[at] = b;
        at += 1;
    }
    for i in (0..len).rev() {
        buf[at] = digits[i];
        at += 1;
    }
    for &b in suffix {
        buf[at] = b;
        at += 1;
    }
    buf[at] = 0;
    core::ffi::CStr::from_bytes_until_nul(&buf[..=at]).unwrap_or(c"case")
}

fn words_to_bytes(words: &[u32], bytes: &mut [u8; 4 * MAX_WORDS]) -> usize {
    for (chunk, w) in bytes.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    4 * words.len()
}

/// What to do for each case.
#[derive(Clone, Copy)]
pub struct Options {
    /// Write every step's outputs to `case<i>.out` (and stream `case<i>.in` where asked).
    pub write_outputs: bool,
    /// Largest N of the `2N − N` instruction count.
    pub max_timed_steps: u32,
}

/// Runs every case (see the module docs) and exits: 0 when every in-flash comparison matched
/// and every file could be used, 1 otherwise.
pub fn run_cases(cases: &[&dyn Case], options: Options) -> ! {
    let peripherals =
        cortex_m::Peripherals::take().unwrap_or_else(|| crate::fail("peripherals taken"));
    let mut counter = InstructionCounter::new(peripherals.SYST);
    defmt::info!("harness: {=usize} case(s)", cases.len());
    let mut all_ok = true;
    let mut out = [0u32; MAX_WORDS];
    let mut expected = [0u32; MAX_WORDS];
    let mut bytes = [0u8; 4 * MAX_WORDS];
    for (index, case) in cases.iter().enumerate() {
        let (n_in, n_out) = (case.inputs(), case.outputs());
        defmt::info!(
            "case {=usize} name={=str} inputs={=usize} outputs={=usize} golden_steps={=usize} stream={=bool} weights={=usize} golden={=usize} state={=usize}",
            index,
            case.name(),
            n_in,
            n_out,
            case.golden_steps(),
            case.stream(),
            case.weights_bytes(),
            case.golden_bytes(),
            case.state_bytes()
        );
        // 1. Outputs of every step, to the host file; in-flash comparison on golden input.
        let mut steps = 0usize;
        let mut mismatch: i32 = -1;
        if options.write_outputs {
            let mut name = [0u8; 32];
            let mut file = match semihosting::fs::File::create(file_name(&mut name, index, b".out"))
            {
                Ok(file) => file,
                Err(_) => {
                    defmt::error!("case {=usize}: cannot create the output file", index);
                    all_ok = false;
                    continue;
                }
            };
            case.reset();
            if case.stream() {
                let mut name = [0u8; 32];
                let Ok(mut input) =
                    semihosting::fs::File::open(file_name(&mut name, index, b".in"))
                else {
                    defmt::error!("case {=usize}: cannot open the input file", index);
                    all_ok = false;
                    continue;
                };
                let mut x = [0u32; MAX_WORDS];
                let mut name = [0u8; 32];
                if let Ok(mut lengths) =
                    semihosting::fs::File::open(file_name(&mut name, index, b".seq"))
                {
                    // Recordings: one length word per recording in `case<i>.seq`; the state is
                    // reset before each, and the class at its last step is logged.
                    let mut recording = 0u32;
                    let mut word = [0u8; 4];
                    while lengths.read_exact(&mut word).is_ok() {
                        let len = u32::from_le_bytes(word);
                        case.reset();
                        for _ in 0..len {
                            let buf = &mut bytes[..4 * n_in];
                            if input.read_exact(buf).is_err() {
                                defmt::error!(
                                    "case {=usize}: input ends inside recording {=u32}",
                                    index,
                                    recording
                                );
                                all_ok = false;
                                break;
                            }
                            for (w, chunk) in x.iter_mut().zip(buf.chunks_exact(4)) {
                                *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                            }
                            case.step_words(&x[..n_in], &mut out[..n_out]);
                            let n_bytes = words_to_bytes(&out[..n_out], &mut bytes);
                            if file.write_all(&bytes[..n_bytes]).is_err() {
                                all_ok = false;
                                break;
                            }
                            steps += 1;
                        }
                        defmt::info!(
                            "class case={=usize} recording={=u32} steps={=u32} class={=usize}",
                            index,
                            recording,
                            len,
                            case.argmax(&out[..n_out])
                        );
                        recording += 1;
                    }
                } else {
                    loop {
                        let buf = &mut bytes[..4 * n_in];
                        if input.read_exact(buf).is_err() {
                            break;
                        }
                        for (w, chunk) in x.iter_mut().zip(buf.chunks_exact(4)) {
                            *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                        }
                        case.step_words(&x[..n_in], &mut out[..n_out]);
                        let len = words_to_bytes(&out[..n_out], &mut bytes);
                        if file.write_all(&bytes[..len]).is_err() {
                            all_ok = false;
                            break;
                        }
                        steps += 1;
                    }
                }
            } else {
                for k in 0..case.golden_steps() {
                    case.step_golden(k, &mut out[..n_out]);
                    case.expected(k, &mut expected[..n_out]);
                    if mismatch < 0
                        && out[..n_out]
                            .iter()
                            .zip(&expected[..n_out])
                            .any(|(&g, &e)| !case.matches(g, e))
                    {
                        mismatch = k as i32;
                        all_ok = false;
                    }
                    let len = words_to_bytes(&out[..n_out], &mut bytes);
                    if file.write_all(&bytes[..len]).is_err() {
                        all_ok = false;
                        break;
                    }
                    steps += 1;
                }
            }
        }
        // 2. Instructions per step: 2N − N steps over the in-flash input.
        let n = (case.golden_steps() as u32).clamp(1, options.max_timed_steps.max(1));
        let ticks = counter
            .ticks_per_n(n, |count| {
                case.reset();
                case.run(count)
            })
            .unwrap_or(0);
        // 3. Stack high-water of one step, with interrupts masked: the free-running SysTick
        // of the instruction counter would otherwise stack its exception frame (104 B with
        // the FPU context) on top of the step whenever it wraps during the call.
        case.reset();
        let stack = cortex_m::interrupt::free(|_| stack_used(|| case.step_probe()))
            .map_or(-1, |b| b as i32);
        defmt::info!(
            "result case={=usize} steps={=usize} mismatch={=i32} n={=u32} ticks={=u64} stack={=i32}",
            index,
            steps,
            mismatch,
            n,
            ticks,
            stack
        );
    }
    defmt::info!("harness: done");
    crate::exit(if all_ok {
        crate::EXIT_SUCCESS
    } else {
        crate::EXIT_FAILURE
    })
}
