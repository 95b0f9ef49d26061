"""t3d: text-to-3D by score distillation, with the Janus fixes as composable flags."""

import os

# Some virtual machines advertise Intel AMX in cpuid without enabling it, and oneDNN's AMX bf16
# kernels then die with "Illegal instruction" (seen on this project's own 2-core Xeon machines,
# torch 2.13.0+cpu: a bf16 nn.Linear on CPU). Capping oneDNN below AMX costs nothing for fp32
# (never AMX) and keeps bf16 on AVX-512; oneDNN reads it lazily, at the first CPU primitive. A
# user's own ONEDNN_MAX_CPU_ISA wins.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_FP16")

__version__ = "0.1.0"
