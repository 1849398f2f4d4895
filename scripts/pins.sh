# What scripts/setup.sh installs, also read by scripts/wheelhouse.sh (one list for both).
VORB_TORCH="torch==2.13.0"  # installed first and alone: an unpinned torch pulls CUDA builds
VORB_EXTRAS="dev,ray,slurm,consumers"  # the optional dependencies of pyproject.toml that setup.sh installs
