"""Simulate a small Yin-Yang-sized LIF network, print spike times and a gradient.

    python experiments/demo.py
"""

import time

import equinox as eqx
import jax
import jax.numpy as jnp

import eventax as ex


def main():
    net = ex.FFEvNN(
        layers=[50, 3], in_size=5, neuron_model=ex.LIF, max_solver_time=30.0,
        key=jax.random.PRNGKey(0), thresh=1.0, tsyn=5.0, tmem=20.0, wmean=1.5, wlim=3.0,
    )
    key = jax.random.PRNGKey(1)
    xy = jax.random.uniform(key, (8, 2))
    x = jnp.concatenate([xy, 1 - xy, jnp.zeros((8, 1))], axis=1)[..., None] * 30.0  # (8, 5, 1)

    t0 = time.perf_counter()
    t_first = jax.block_until_ready(jax.jit(jax.vmap(net.ttfs))(x))
    print(f"first output spike times (8 samples x 3 outputs), {time.perf_counter() - t0:.1f}s incl. compile:")
    print(t_first)

    spikes = net.record(x[0])
    n = int(spikes.n_spikes)
    print(f"sample 0: {n} spikes; first five (time, neuron):")
    print([(round(float(t), 3), int(i)) for t, i in zip(spikes.times[:5], spikes.neurons[:5])])

    def loss(model):
        t = jax.vmap(model.ttfs)(x)
        return jnp.mean(jnp.where(jnp.isinf(t), 30.0, t))

    value, grads = eqx.filter_jit(eqx.filter_value_and_grad(loss))(net)
    g = grads.neuron_model
    print(f"loss {float(value):.4f}; |dL/dW| = {float(jnp.linalg.norm(g.weights)):.4f}, "
          f"|dL/d ic| = {float(jnp.linalg.norm(g.ic)):.4f}")


if __name__ == "__main__":
    main()
