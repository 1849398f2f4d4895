"""VORB baselines. Each lives in one file (config, networks specific to it, losses, update).

The registrations below name classes by string so that listing baselines never imports torch;
the classes themselves (and their docstrings) are in the files named.
"""

from benchmark.harness.registry import BUILT_IN, BaselineSpec, register

register(
    BaselineSpec(
        name="sac-curl-online",
        config="baselines.sac_curl:SACCURLConfig",
        agent="baselines.sac_curl:SACCURLAgent",
        offline=False,
        summary="SAC + CURL interacting with the pixel walker (upper reference)",
        family="sac-online",
        origin=BUILT_IN,
    )
)
register(
    BaselineSpec(
        name="sac-curl-offline",
        config="baselines.sac_curl:SACCURLConfig",
        agent="baselines.sac_curl:SACCURLAgent",
        offline=True,
        summary="the same SAC + CURL agent trained only from a dataset",
        family="sac-offline",
        origin=BUILT_IN,
    )
)
register(
    BaselineSpec(
        name="cql-curl",
        config="baselines.cql_curl:CQLCURLConfig",
        agent="baselines.cql_curl:CQLCURLAgent",
        offline=True,
        summary="SAC + CURL with the CQL(H) conservative penalty on both critics",
        family="cql",
        origin=BUILT_IN,
    )
)
register(
    BaselineSpec(
        name="bc-pixels",
        config="baselines.bc:BCConfig",
        agent="baselines.bc:BCAgent",
        offline=True,
        summary="behaviour cloning: pixel encoder + policy, random-shift augmentation",
        family="bc",
        origin=BUILT_IN,
    )
)
register(
    BaselineSpec(
        name="drqbc",
        config="baselines.drqbc:DrQBCConfig",
        agent="baselines.drqbc:DrQBCAgent",
        offline=True,
        summary="DrQ-v2 actor-critic with the TD3+BC actor term (V-D4RL)",
        family="td3bc",
        origin=BUILT_IN,
    )
)

# -- the state track: the same agents on the walker's 24-dimensional proprioceptive state ------
register(
    BaselineSpec(
        name="sac-state-online",
        config="baselines.sac_curl:SACStateConfig",
        agent="baselines.sac_curl:SACCURLAgent",
        offline=False,
        summary="SAC interacting with the state walker (upper reference of the state track)",
        family="sac-online",
        origin=BUILT_IN,
        obs_kind="state",
    )
)
register(
    BaselineSpec(
        name="sac-state-offline",
        config="baselines.sac_curl:SACStateConfig",
        agent="baselines.sac_curl:SACCURLAgent",
        offline=True,
        summary="the same SAC trained only from a dataset's states",
        family="sac-offline",
        origin=BUILT_IN,
        obs_kind="state",
    )
)
register(
    BaselineSpec(
        name="cql-state",
        config="baselines.cql_curl:CQLStateConfig",
        agent="baselines.cql_curl:CQLCURLAgent",
        offline=True,
        summary="SAC with the CQL(H) penalty on states, CORL's sizes (3x256, 10 sampled actions)",
        family="cql",
        origin=BUILT_IN,
        obs_kind="state",
    )
)
register(
    BaselineSpec(
        name="bc-state",
        config="baselines.bc:BCStateConfig",
        agent="baselines.bc:BCAgent",
        offline=True,
        summary="behaviour cloning on states: 256-256 MLP, tanh output, MSE (CORL)",
        family="bc",
        origin=BUILT_IN,
        obs_kind="state",
    )
)
register(
    BaselineSpec(
        name="td3bc-state",
        config="baselines.drqbc:TD3BCStateConfig",
        agent="baselines.drqbc:DrQBCAgent",
        offline=True,
        summary="TD3+BC on states (Fujimoto and Gu 2021; DrQ+BC's update, TD3's choices)",
        family="td3bc",
        origin=BUILT_IN,
        obs_kind="state",
    )
)
