//! What the backend choice and `biprop bench` read off the CPU.

/// What the backend choice and `biprop bench` read off the CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuInfo {
    /// The CPUID vendor string (`GenuineIntel`, `AuthenticAMD`), empty off x86-64.
    pub vendor: String,
    /// The model name (CPUID brand string), empty when there is none.
    pub model: String,
    /// AVX-512 Foundation.
    pub avx512f: bool,
}

impl CpuInfo {
    /// Reads the running CPU.
    pub fn read() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::__cpuid;
            let bytes =
                |regs: [u32; 4]| -> Vec<u8> { regs.iter().flat_map(|w| w.to_le_bytes()).collect() };
            // SAFETY: CPUID exists on every x86-64 CPU.
            #[allow(unused_unsafe)]
            let (vendor, model) = unsafe {
                let v = __cpuid(0);
                let vendor = bytes([v.ebx, v.edx, v.ecx, 0]);
                let mut brand = Vec::new();
                if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
                    for leaf in 0x8000_0002..=0x8000_0004u32 {
                        let r = __cpuid(leaf);
                        brand.extend(bytes([r.eax, r.ebx, r.ecx, r.edx]));
                    }
                }
                (vendor, brand)
            };
            let text = |b: &[u8]| {
                String::from_utf8_lossy(b)
                    .trim_matches(char::from(0))
                    .trim()
                    .to_string()
            };
            CpuInfo {
                vendor: text(&vendor[..12]),
                model: text(&model),
                avx512f: std::arch::is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            CpuInfo {
                vendor: String::new(),
                model: String::new(),
                avx512f: false,
            }
        }
    }
}
