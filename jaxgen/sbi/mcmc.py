"""Samplers for posteriors known up to a constant: many-chain MCMC, importance and rejection.

Every sampler is an ``eqx.Module`` strategy with one pure method
``run(key, target, num_samples) -> (samples, SamplerTrace)``, traced once under ``jit``; the
chains are vectorised with ``vmap`` and advanced with ``lax.scan``. Convergence diagnostics
(split R-hat, effective sample size) are computed afterwards on the host by
:func:`mixing_diagnostics`.
"""

from __future__ import annotations

import abc
import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


class AbstractTarget(eqx.Module):
    """An unnormalised log density over ``theta`` and the prior it is relative to.

    ``log_likelihood(theta)`` is the data term, ``log_prior(theta)`` is ``-inf`` outside the
    prior's support, and ``sample_prior(key, n)`` draws from the prior (used to start chains and
    as the proposal of importance and rejection sampling).
    """

    @abc.abstractmethod
    def log_likelihood(self, theta: Float[Array, " d"]) -> Float[Array, ""]:
        """The data term for one ``theta``."""

    @abc.abstractmethod
    def log_prior(self, theta: Float[Array, " d"]) -> Float[Array, ""]:
        """The prior log density for one ``theta`` (``-inf`` outside the support)."""

    @abc.abstractmethod
    def sample_prior(self, key: PRNGKeyArray, num: int) -> Float[Array, "num d"]:
        """``num`` prior draws."""

    def log_density(self, theta: Float[Array, " d"]) -> Float[Array, ""]:
        lp = self.log_prior(theta)
        # Outside the support the likelihood model may be NaN; never let it through.
        ll = jnp.where(jnp.isfinite(lp), self.log_likelihood(theta), 0.0)
        out = lp + ll
        return jnp.where(jnp.isnan(out), -jnp.inf, out)


class SamplerTrace(eqx.Module):
    """What a sampler returns besides the samples (arrays; diagnostics are computed on host).

    Attributes:
        chains: ``(num_chains, num_draws, d)`` kept MCMC states, or ``None`` for samplers
            without chains.
        acceptance_rate: mean acceptance probability (MCMC) or acceptance fraction (rejection).
        log_weights: importance log-weights of the proposals, or ``None``.
    """

    chains: Array | None
    acceptance_rate: Array
    log_weights: Array | None


@dataclasses.dataclass(frozen=True)
class SamplingInfo:
    """Diagnostics of one sampling run.

    Attributes:
        method: the sampler's class name.
        acceptance_rate: see :class:`SamplerTrace`.
        r_hat: per-dimension split R-hat (MCMC; ``nan`` otherwise). Values above 1.1 mean the
            chains disagree: they have not mixed.
        ess: per-dimension effective sample size (MCMC: from autocorrelations; importance
            sampling: Kish's ``(sum w)^2 / sum w^2``, the same for every dimension).
        num_samples: samples returned.
    """

    method: str
    acceptance_rate: float
    r_hat: np.ndarray
    ess: np.ndarray
    num_samples: int

    @property
    def converged(self) -> bool:
        """Split R-hat below 1.1 everywhere and an effective sample size of at least 100."""
        r_ok = bool(np.all(np.nan_to_num(self.r_hat, nan=1.0) < 1.1))
        return r_ok and bool(np.all(self.ess >= min(100.0, 0.5 * self.num_samples)))


class AbstractSampler(eqx.Module):
    """A strategy for drawing samples from an :class:`AbstractTarget`."""

    @abc.abstractmethod
    def run(
        self, key: PRNGKeyArray, target: AbstractTarget, num_samples: int
    ) -> tuple[Float[Array, "num_samples d"], SamplerTrace]:
        """Draw ``num_samples`` samples (pure; traced under ``jit``)."""


def _resample_from_prior(key, target: AbstractTarget, num: int, num_candidates: int):
    """Sampling-importance-resampling from the prior: good starting points for chains."""
    k_prior, k_pick = jax.random.split(key)
    candidates = target.sample_prior(k_prior, num_candidates)
    log_w = jax.vmap(target.log_density)(candidates) - jax.vmap(target.log_prior)(candidates)
    log_w = jnp.where(jnp.isfinite(log_w), log_w, -jnp.inf)
    # If every candidate has zero weight, fall back to uniform picks (the chains will say so).
    log_w = jnp.where(jnp.all(~jnp.isfinite(log_w)), 0.0, log_w)
    # Draw WITHOUT replacement (Gumbel top-k): in many dimensions the weights are so uneven
    # that resampling with replacement would start every chain at the same point, and chains
    # that start together neither adapt well nor reveal poor mixing through R-hat.
    gumbel = jax.random.gumbel(k_pick, log_w.shape)
    _, idx = jax.lax.top_k(jnp.where(jnp.isfinite(log_w), log_w + gumbel, -jnp.inf), num)
    return candidates[idx], log_w


class MetropolisHastings(AbstractSampler):
    """Many vectorised random-walk Metropolis chains with adapted Gaussian proposals.

    Chains start from sampling-importance-resampling of prior draws (so they start spread over
    the modes in proportion to their mass). Warm-up has two halves: each half tunes the step size
    of every chain by Robbins-Monro towards an acceptance rate of 0.234 (0.44 in one dimension;
    Roberts, Gelman & Gilks 1997), and after the first half each chain's proposal covariance is
    set from its own trajectory (Haario et al. 2001), blended with the pooled covariance.

    Random-walk chains rarely cross between separated modes. So after warm-up, with probability
    ``jump_probability`` per step, a chain instead proposes from a fixed mixture of Gaussians,
    one component per chain fitted to the end of that chain's warm-up (an independence
    Metropolis-Hastings move, accepted with the ratio ``p(theta') q(theta) / p(theta)
    q(theta')``). Mixing the two valid kernels keeps the posterior invariant, and chains that
    warmed up in different modes now trade places, so the pooled draws weigh the modes by their
    mass and R-hat reports mixing honestly. On a unimodal posterior the fitted mixture is a good
    overdispersed proposal, so with most steps jumps the kept states are nearly independent
    after a short thinning: the defaults (500 warm-up steps, thin 5, jumps 95% of the time) cost
    half the density evaluations of long random-walk thinning for the same accuracy.

    Args:
        num_chains: parallel chains (the cost per step is one batched density evaluation). At
            least 100 draws are kept per chain, so small requests use fewer chains.
        num_warmup: warm-up steps per chain (discarded).
        thin: keep every ``thin``-th state.
        num_init_candidates: prior draws per chain for the initial resampling.
        jump_probability: chance per step of the mode-jumping move after warm-up (0 turns it
            off).
    """

    num_chains: int = eqx.field(static=True, default=100)
    num_warmup: int = eqx.field(static=True, default=500)
    thin: int = eqx.field(static=True, default=5)
    num_init_candidates: int = eqx.field(static=True, default=20)
    jump_probability: float = eqx.field(static=True, default=0.95)

    def __check_init__(self):
        if not 0.0 <= self.jump_probability < 1.0:
            raise ValueError(
                f"`jump_probability` must be in [0, 1), got {self.jump_probability!r}."
            )

    def run(self, key, target, num_samples):
        # Short chains make split R-hat and the ESS unreliable: keep at least 100 draws each.
        num_chains = max(4, min(self.num_chains, num_samples // 100))
        k_init, k_run = jax.random.split(key)
        init, _ = _resample_from_prior(
            k_init, target, num_chains, num_chains * self.num_init_candidates
        )
        d = init.shape[-1]
        target_accept = 0.44 if d == 1 else 0.234
        pooled = jnp.cov(init, rowvar=False).reshape(d, d) + 1e-8 * jnp.eye(d)
        chol0 = jnp.linalg.cholesky(pooled * 2.38**2 / d + 1e-10 * jnp.eye(d))
        half = max(self.num_warmup // 2, 1)
        num_warmup = max(self.num_warmup, half + 1)
        draws = -(-num_samples // num_chains)
        total = num_warmup + draws * self.thin
        eye = jnp.eye(d)

        # One scan body for warm-up and sampling, so the density is compiled once. Steps in
        # [half/2, half) accumulate each chain's moments; at step `half` the proposal
        # covariances are set from them (Haario et al. 2001) and the step sizes restart. The
        # same accumulators then collect steps [late, num_warmup): at the end of warm-up they
        # become the components of the fixed mode-jumping mixture.
        late = max(half + (num_warmup - half) // 2, half + 1)
        jump = float(self.jump_probability)
        log_num = jnp.log(float(num_chains))

        def mixture_log_prob(x, means, inv_chols, log_dets):
            # log (1/C) sum_j N(x_i; m_j, S_j) for every row x_i (C components), S_j = L_j L_j^T.
            diff = x[:, None, :] - means[None]  # (n, C, d)
            z = jnp.einsum("cij,ncj->nci", inv_chols, diff)
            quad = jnp.sum(z**2, -1)  # (n, C)
            logn = -0.5 * (quad + d * jnp.log(2 * jnp.pi)) - log_dets[None]
            return jax.nn.logsumexp(logn, axis=1) - log_num

        def moments(s1, s2, count):
            n = jnp.maximum(count, 2.0)
            mean = s1 / n
            own = (s2 - n * mean[:, :, None] * mean[:, None, :]) / (n - 1)
            grand = jnp.mean(s1, 0) / n
            pooled = jnp.mean(s2, 0) / n - jnp.outer(grand, grand)
            return mean, own, pooled

        def step(state, inputs):
            theta, lp, log_scale, chol, s1, s2, count, mix = state
            k, t = inputs
            k_normal, k_uniform = jax.random.split(k)
            normals = jax.random.normal(k_normal, (2,) + theta.shape)
            uniforms = jax.random.uniform(k_uniform, (3,) + lp.shape)
            prop = theta + jnp.exp(log_scale)[:, None] * jnp.einsum(
                "cij,cj->ci", chol, normals[0]
            )

            def jump_move(prop):
                # After warm-up: some chains propose from the fixed mixture instead.
                means, chols, inv_chols, log_dets = mix
                comp = jnp.minimum((uniforms[1] * num_chains).astype(jnp.int32), num_chains - 1)
                prop_mix = means[comp] + jnp.einsum("cij,cj->ci", chols[comp], normals[1])
                jumping = uniforms[2] < jump
                prop = jnp.where(jumping[:, None], prop_mix, prop)
                log_q = mixture_log_prob(
                    jnp.concatenate([theta, prop]), means, inv_chols, log_dets
                )
                return prop, jnp.where(jumping, log_q[:num_chains] - log_q[num_chains:], 0.0)

            if jump > 0.0:
                prop, log_correction = jax.lax.cond(
                    t >= num_warmup, jump_move, lambda p: (p, jnp.zeros_like(lp)), prop
                )
            else:
                log_correction = jnp.zeros_like(lp)
            lp_prop = jax.vmap(target.log_density)(prop)
            log_alpha = jnp.where(jnp.isfinite(lp_prop), lp_prop - lp + log_correction, -jnp.inf)
            log_alpha = jnp.where(jnp.isnan(log_alpha), -jnp.inf, log_alpha)
            accept_prob = jnp.exp(jnp.minimum(log_alpha, 0.0))
            accept = uniforms[0] < accept_prob
            theta = jnp.where(accept[:, None], prop, theta)
            lp = jnp.where(accept, lp_prop, lp)
            stage_t = jnp.where(t < half, t, t - half).astype(float)
            rate = jnp.where(t < num_warmup, 3.0 / (1.0 + stage_t) ** 0.6, 0.0)
            log_scale = log_scale + rate * (accept_prob - target_accept)
            record = ((t >= half // 2) & (t < half)) | ((t >= late) & (t < num_warmup))
            s1 = s1 + jnp.where(record, theta, 0.0)
            s2 = s2 + jnp.where(record, theta[:, :, None] * theta[:, None, :], 0.0)
            count = count + record

            def adapt(_):
                mean, own, pooled = moments(s1, s2, count)
                # The pooled covariance of all chains' windows is the reliable part (each
                # chain's own window is short and autocorrelated); a little of the chain's own
                # shape helps on multimodal or curved posteriors.
                cov = 0.2 * own + 0.8 * pooled
                # Shrink towards a scaled identity so no direction collapses when the window
                # saw little movement along it.
                cov = 0.9 * cov + 0.1 * jnp.trace(pooled) / d * eye + 1e-10 * eye
                new = jax.vmap(jnp.linalg.cholesky)(cov * 2.38**2 / d)
                ok = jnp.all(jnp.isfinite(new), axis=(1, 2))[:, None, None]
                # The accumulators restart for the mixture's window.
                return (jnp.where(ok, new, chol), jnp.zeros_like(log_scale),
                        jnp.zeros_like(s1), jnp.zeros_like(s2), jnp.zeros_like(count))

            chol, log_scale, s1, s2, count = jax.lax.cond(
                t == half, adapt, lambda _: (chol, log_scale, s1, s2, count), None
            )

            def fit_mixture(_):
                mean, own, pooled = moments(s1, s2, count)
                # A warm-up too short for its window: centre the components on the chains'
                # states with the random walk's own proposal shapes.
                short = count < 2
                walk = jnp.einsum("cij,ckj->cik", chol, chol) * d / 2.38**2
                mean = jnp.where(short, theta, mean)
                own = jnp.where(short, walk, own)
                pooled = jnp.where(short, jnp.mean(walk, 0), pooled)
                # Each chain's own shape, widened (heavier coverage than the mode itself) and
                # shrunk a little towards its own scale. The pooled scale would be wrong here:
                # with chains in modes far apart it is the spread BETWEEN modes, and components
                # that wide almost never land a jump inside a narrow mode. The chain's adapted
                # random-walk covariance is the floor that keeps a component from collapsing
                # when its chain barely moved.
                own_scale = jnp.trace(own, axis1=1, axis2=2)[:, None, None] / d
                local = jnp.exp(2 * log_scale)[:, None, None] * walk
                cov = 1.5 * (0.9 * own + 0.1 * own_scale * eye) + 0.1 * local + 1e-10 * eye
                chols = jax.vmap(jnp.linalg.cholesky)(cov)
                ok = jnp.all(jnp.isfinite(chols), axis=(1, 2))[:, None, None]
                chols = jnp.where(ok, chols, jnp.linalg.cholesky(pooled + 1e-10 * eye))
                log_dets = jnp.sum(jnp.log(jnp.diagonal(chols, axis1=1, axis2=2)), -1)
                inv_chols = jax.vmap(
                    lambda L: jax.scipy.linalg.solve_triangular(L, eye, lower=True)
                )(chols)
                return mean, chols, inv_chols, log_dets

            if jump > 0.0:
                mix = jax.lax.cond(t == num_warmup - 1, fit_mixture, lambda _: mix, None)
            return (theta, lp, log_scale, chol, s1, s2, count, mix), (theta, accept_prob)

        log_p = jax.vmap(target.log_density)(init)
        inv0 = jax.scipy.linalg.solve_triangular(chol0, eye, lower=True)
        mix0 = (init, jnp.broadcast_to(chol0, (num_chains, d, d)),
                jnp.broadcast_to(inv0, (num_chains, d, d)),
                jnp.full(num_chains, jnp.sum(jnp.log(jnp.diagonal(chol0)))))
        state = (
            init, log_p, jnp.zeros(num_chains), jnp.broadcast_to(chol0, (num_chains, d, d)),
            jnp.zeros((num_chains, d)), jnp.zeros((num_chains, d, d)), jnp.zeros(()), mix0,
        )
        _, (traj, acc) = jax.lax.scan(
            step, state, (jax.random.split(k_run, total), jnp.arange(total))
        )
        kept = traj[num_warmup:][self.thin - 1 :: self.thin]  # (draws, chains, d)
        chains = jnp.swapaxes(kept, 0, 1)
        samples = kept.reshape(-1, d)[:num_samples]
        return samples, SamplerTrace(chains, jnp.mean(acc[num_warmup:]), None)


class IndependenceMetropolis(AbstractSampler):
    """Independence Metropolis-Hastings with a learned proposal (e.g. an NPE posterior).

    When the likelihood is exact, the chain targets the exact posterior whatever the proposal;
    with a good proposal nearly every move is accepted and successive states are nearly
    uncorrelated (Tierney 1994; the "NPE as proposal" idea of Glöckler et al. 2022). Each chain
    starts from a proposal draw, so there is no warm-up beyond ``num_warmup`` steps.

    Args:
        proposal: any module with ``sample_and_log_prob(key, num) -> (theta, log_q)`` and
            ``log_prob(theta)`` for one fixed observation, e.g.
            ``jg.sbi.flow_proposal(npe_posterior,
            x_o)``.
        num_chains: parallel chains.
        num_warmup: discarded steps per chain.
    """

    proposal: eqx.Module
    num_chains: int = eqx.field(static=True, default=100)
    num_warmup: int = eqx.field(static=True, default=20)

    def run(self, key, target, num_samples):
        draws = -(-num_samples // self.num_chains)
        total = self.num_warmup + draws + 1
        k_prop, k_acc = jax.random.split(key)
        theta, log_q = self.proposal.sample_and_log_prob(k_prop, total * self.num_chains)
        log_p = jax.vmap(target.log_density)(theta)
        log_w = jnp.where(jnp.isfinite(log_p), log_p - log_q, -jnp.inf)
        d = theta.shape[-1]
        theta = theta.reshape(total, self.num_chains, d)
        log_w = log_w.reshape(total, self.num_chains)
        u = jax.random.uniform(k_acc, (total - 1, self.num_chains))

        def body(state, inp):
            cur, cur_w = state
            new, new_w, ui = inp
            log_alpha = jnp.where(jnp.isfinite(new_w), new_w - cur_w, -jnp.inf)
            log_alpha = jnp.where(~jnp.isfinite(cur_w) & jnp.isfinite(new_w), 0.0, log_alpha)
            prob = jnp.exp(jnp.minimum(log_alpha, 0.0))
            acc = ui < prob
            cur = jnp.where(acc[:, None], new, cur)
            cur_w = jnp.where(acc, new_w, cur_w)
            return (cur, cur_w), (cur, prob)

        _, (states, probs) = jax.lax.scan(body, (theta[0], log_w[0]), (theta[1:], log_w[1:], u))
        kept = states[self.num_warmup :]
        samples = kept.reshape(-1, d)[:num_samples]
        return samples, SamplerTrace(jnp.swapaxes(kept, 0, 1), jnp.mean(probs), log_w.reshape(-1))


class ImportanceSampling(AbstractSampler):
    """Sampling-importance-resampling with the prior as proposal (Rubin 1988).

    ``num_proposals`` prior draws are weighted by the likelihood (or ratio) and resampled with
    replacement. Exact as ``num_proposals`` grows; efficient when the posterior is not much
    narrower than the prior (check ``SamplingInfo.ess``).
    """

    num_proposals: int = eqx.field(static=True, default=100_000)

    def run(self, key, target, num_samples):
        k_prop, k_pick = jax.random.split(key)
        theta = target.sample_prior(k_prop, self.num_proposals)
        log_w = jax.vmap(target.log_density)(theta) - jax.vmap(target.log_prior)(theta)
        log_w = jnp.where(jnp.isfinite(log_w), log_w, -jnp.inf)
        idx = jax.random.categorical(k_pick, log_w, shape=(num_samples,))
        return theta[idx], SamplerTrace(None, jnp.asarray(jnp.nan), log_w)


class RejectionSampling(AbstractSampler):
    """Rejection sampling from the prior, accepting with probability ``exp(log L - log M)``.

    The bound ``log M`` is the largest log-likelihood among ``num_proposals`` prior draws plus
    ``margin``; draws beyond the bound are accepted with probability one, so the result is exact
    when the bound holds. Fixed-size batches of ``num_proposals`` are drawn; fewer than
    ``num_samples`` acceptances leave NaN rows that the posterior reports as an error.
    """

    num_proposals: int = eqx.field(static=True, default=100_000)
    margin: float = eqx.field(static=True, default=0.5)

    def run(self, key, target, num_samples):
        k_prop, k_u = jax.random.split(key)
        theta = target.sample_prior(k_prop, self.num_proposals)
        log_w = jax.vmap(target.log_density)(theta) - jax.vmap(target.log_prior)(theta)
        log_w = jnp.where(jnp.isfinite(log_w), log_w, -jnp.inf)
        log_m = jnp.max(log_w) + self.margin
        accept = jnp.log(jax.random.uniform(k_u, log_w.shape)) < log_w - log_m
        # Accepted rows first, in their original order; then NaN padding.
        order = jnp.argsort(~accept, stable=True)[:num_samples]
        samples = jnp.where(accept[order][:, None], theta[order], jnp.nan)
        return samples, SamplerTrace(None, jnp.mean(accept), log_w)


def split_r_hat(chains: np.ndarray) -> np.ndarray:
    """Split R-hat (Gelman et al. 2013, BDA3 §11.4) per dimension of ``(chains, draws, d)``."""
    chains = np.asarray(chains, dtype=float)
    _, n, d = chains.shape
    if n < 4:
        return np.full(d, np.nan)
    half = n // 2
    split = np.concatenate([chains[:, :half], chains[:, n - half :]], axis=0)
    means = split.mean(axis=1)
    within = split.var(axis=1, ddof=1).mean(axis=0)
    between = half * means.var(axis=0, ddof=1)
    var_plus = (half - 1) / half * within + between / half
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sqrt(var_plus / within)
    return np.where(within > 0, r, np.where(between > 0, np.inf, 1.0))


def effective_sample_size(chains: np.ndarray) -> np.ndarray:
    """Effective sample size per dimension of ``(chains, draws, d)``.

    Autocorrelations are averaged over chains (with the between-chain variance, as in BDA3) and
    summed in pairs until a pair turns negative (Geyer's initial positive sequence).
    """
    chains = np.asarray(chains, dtype=float)
    m, n, d = chains.shape
    if n < 4:
        return np.full(d, float(m * n))
    centred = chains - chains.mean(axis=1, keepdims=True)
    size = 1 << math.ceil(math.log2(2 * n))
    f = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n  # (m, n, d)
    within = acov[:, 0].mean(axis=0) * n / (n - 1)
    between = n * chains.mean(axis=1).var(axis=0, ddof=1) if m > 1 else 0.0
    var_plus = (n - 1) / n * within + between / n
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (within - acov.mean(axis=0)) / var_plus  # (n, d)
    ess = np.empty(d)
    for j in range(d):
        if not np.isfinite(var_plus[j]) or var_plus[j] <= 0:
            ess[j] = 1.0  # constant chains: one distinct value
            continue
        tau, t = -1.0, 0
        while t + 1 < n:
            pair = rho[t, j] + rho[t + 1, j]
            if pair < 0:
                break
            tau += 2 * pair
            t += 2
        ess[j] = m * n / max(tau, 1.0 / math.log10(max(m * n, 10)))
    return ess


def mixing_diagnostics(
    method: str, samples: Array, trace: SamplerTrace
) -> SamplingInfo:
    """Turn a :class:`SamplerTrace` into a :class:`SamplingInfo` (host-side numpy)."""
    samples = np.asarray(samples)
    d = samples.shape[-1]
    if trace.chains is not None:
        chains = np.asarray(trace.chains)
        r_hat, ess = split_r_hat(chains), effective_sample_size(chains)
    else:
        r_hat = np.full(d, np.nan)
        if trace.log_weights is not None:
            lw = np.asarray(trace.log_weights, dtype=float)
            lw = lw[np.isfinite(lw)]
            if lw.size:
                w = np.exp(lw - lw.max())
                kish = w.sum() ** 2 / np.sum(w**2)
            else:
                kish = 0.0
            ess = np.full(d, kish)
        else:
            ess = np.full(d, float(samples.shape[0]))
    return SamplingInfo(
        method, float(trace.acceptance_rate), r_hat, ess, int(samples.shape[0])
    )
