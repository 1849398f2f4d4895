"""VORB baselines. Each lives in one file (config, networks specific to it, losses, update).

The registrations below name classes by string so that listing baselines never imports torch;
the classes themselves (and their docstrings) are in the files named.
"""

from benchmark.registry import BaselineSpec, register

register(
    BaselineSpec(
        name="sac-curl-online",
        config="baselines.sac_curl:SACCURLConfig",
        agent="baselines.sac_curl:SACCURLAgent",
        offline=False,
        summary="SAC + CURL interacting with the pixel walker (upper reference)",
    )
)
register(
    BaselineSpec(
        name="sac-curl-offline",
        config="baselines.sac_curl:SACCURLConfig",
        agent="baselines.sac_curl:SACCURLAgent",
        offline=True,
        summary="the same SAC + CURL agent trained only from a dataset",
    )
)
register(
    BaselineSpec(
        name="cql-curl",
        config="baselines.cql_curl:CQLCURLConfig",
        agent="baselines.cql_curl:CQLCURLAgent",
        offline=True,
        summary="SAC + CURL with the CQL(H) conservative penalty on both critics",
    )
)
register(
    BaselineSpec(
        name="bc",
        config="baselines.bc:BCConfig",
        agent="baselines.bc:BCAgent",
        offline=True,
        summary="behaviour cloning: pixel encoder + policy, random-shift augmentation",
    )
)
register(
    BaselineSpec(
        name="drqbc",
        config="baselines.drqbc:DrQBCConfig",
        agent="baselines.drqbc:DrQBCAgent",
        offline=True,
        summary="DrQ-v2 actor-critic with the TD3+BC actor term (V-D4RL)",
    )
)
