"""The forecast models the backtest compares, one registered function each.

A model takes one series' complete months up to a forecast origin (`Training`: cost a day,
SMS a day, the months) and returns, for the next `horizon` months, the expected cost a day
and its own (parametric) prediction interval at `level` where it has one. Cost a day, not
a month's cost: February's three missing days are calendar, not trend.

- `seasonal_naive`: the baseline. The same month a year before when the history holds it,
  else the last month (with one year of history that is most months).
- `driver_regression`: cost a day = a + b x SMS a day + c x month index (least squares,
  statsmodels OLS); SMS a day in the target months is projected on its log-linear trend.
  Its interval is the regression's own prediction interval (it ignores the SMS projection's
  error, which is one reason the backtest's intervals are empirical).
- `ets`: exponential smoothing with a damped additive trend (statsmodels `ETSModel`, the
  innovations state-space form, so it has prediction intervals), with an additive yearly
  season once two years of history exist. It follows level shifts (a node group added)
  within a few months, where a straight-line trend averages them in.

statsmodels, not statsforecast: statsforecast compiles its models with numba at first use
(llvmlite alone is larger than statsmodels, and the first fit of a run pays seconds of JIT
compilation), and it depends on statsmodels anyway; statsmodels brings scipy and patsy,
imports in about a second, and is only imported when a model is fitted.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsbook.registry import Registry


@dataclass(frozen=True)
class Training:
    """One series' complete months before a forecast origin."""

    periods: pd.DatetimeIndex  # first day of each month, consecutive
    cost_per_day: np.ndarray
    sms_per_day: np.ndarray


@dataclass(frozen=True)
class Prediction:
    """Cost a day for the next months; the model's own interval (NaN where it has none)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


ForecastModel = Callable[[Training, int, float], Prediction]
MODELS: Registry[ForecastModel] = Registry("forecast model", ["opsbook.cost.forecast_models"])
SEASON = 12


def _no_interval(mean: np.ndarray) -> Prediction:
    nan = np.full(len(mean), np.nan)
    return Prediction(np.asarray(mean, float), nan, nan)


@MODELS.register("seasonal_naive")
def seasonal_naive(train: Training, horizon: int, level: float) -> Prediction:
    """The same month a year before, else the last month."""
    y, n = train.cost_per_day, len(train.cost_per_day)
    return _no_interval(np.array([y[n + k - SEASON] if n + k >= SEASON else y[-1] for k in range(horizon)]))


def project_sms(train: Training, horizon: int) -> np.ndarray:
    """SMS a day in the next months on the log-linear trend of the history's months."""
    t = np.arange(len(train.sms_per_day), dtype=float)
    if len(t) < 2 or np.any(train.sms_per_day <= 0):
        return np.full(horizon, float(train.sms_per_day[-1]))
    slope, intercept = np.polyfit(t, np.log(train.sms_per_day), 1)
    return np.exp(intercept + slope * np.arange(len(t), len(t) + horizon))


@MODELS.register("driver_regression")
def driver_regression(train: Training, horizon: int, level: float) -> Prediction:
    """Cost a day = a + b x SMS a day + c x month (OLS), SMS projected on its trend."""
    import statsmodels.api as sm  # heavy: only when a model is fitted

    n = len(train.cost_per_day)
    t = np.arange(n, dtype=float)
    x = np.column_stack([np.ones(n), train.sms_per_day, t])
    future = np.column_stack([np.ones(horizon), project_sms(train, horizon), np.arange(n, n + horizon, dtype=float)])
    if n < x.shape[1] + 1 or np.ptp(train.cost_per_day) == 0:
        return _no_interval(np.full(horizon, float(train.cost_per_day[-1])))
    fit = sm.OLS(train.cost_per_day, x).fit()
    frame = fit.get_prediction(future).summary_frame(alpha=1 - level)
    return Prediction(frame["mean"].to_numpy(), frame["obs_ci_lower"].to_numpy(), frame["obs_ci_upper"].to_numpy())


@MODELS.register("ets")
def ets(train: Training, horizon: int, level: float) -> Prediction:
    """ETS(A,Ad,N), or ETS(A,Ad,A) with a yearly season from two years of history."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # heavy: only when fitted

    y = pd.Series(train.cost_per_day, index=pd.DatetimeIndex(train.periods, freq="MS"))
    if len(y) < 4 or np.ptp(y.to_numpy()) == 0:
        return _no_interval(np.full(horizon, float(y.iloc[-1])))
    seasonal = "add" if len(y) >= 2 * SEASON else None
    with warnings.catch_warnings():
        # few points make the optimiser warn about convergence; the backtest judges the result
        warnings.simplefilter("ignore")
        model = ETSModel(y, error="add", trend="add", damped_trend=True, seasonal=seasonal,
                         seasonal_periods=SEASON if seasonal else None)
        fit = model.fit(disp=False)
        frame = fit.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(alpha=1 - level)
    return Prediction(frame["mean"].to_numpy(), frame["pi_lower"].to_numpy(), frame["pi_upper"].to_numpy())
