"""Pictures with the optional matplotlib (``pip install "gmm_fast[plot]"``), imported lazily.

Points are drawn in 2-D (the data itself, or its first two principal components),
coloured by component; for a Gaussian mixture the colour strength is the
probability of that component and each Gaussian gets its 1- and 2-sigma ellipses
(its covariance projected onto the same plane). Figures are built with
``matplotlib.figure.Figure`` directly, so no GUI backend or pyplot state is touched.
"""
import numpy as np

PLOT_HINT = 'install matplotlib to get pictures: pip install "gmm_fast[plot]"'
# Points drawn at most: beyond this a regular subsample (every m-th row) is shown.
_MAX_POINTS = 20000


class PlottingUnavailable(ImportError):
    """matplotlib is not installed."""


def _figure(width, height):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlottingUnavailable(f"matplotlib is not installed: {PLOT_HINT}.") from None
    return Figure(figsize=(width, height), layout="constrained")


def _colors(n_components):
    from matplotlib import colormaps
    cmap = colormaps["tab10" if n_components <= 10 else "tab20"]
    return np.array([cmap(k % cmap.N) for k in range(n_components)])


class Projection:
    """The plane points are drawn in: X itself when 2-D, else its first two principal axes."""

    def __init__(self, X):
        X = np.asarray(X, dtype=np.float64)
        n_features = X.shape[1]
        if n_features <= 2:  # draw the data as it is (one feature: on the x axis)
            self.center = np.zeros(n_features)
            self.axes = np.eye(n_features, 2)
            self.labels = ("feature 0", "feature 1" if n_features == 2 else "")
        else:
            # The top eigenvectors of the (d x d) covariance are the principal axes.
            self.center = X.mean(axis=0)
            centered = X - self.center
            _, vectors = np.linalg.eigh(centered.T @ centered)
            self.axes = vectors[:, ::-1][:, :2]
            self.labels = ("principal component 1", "principal component 2")

    def points(self, X):
        """Coordinates of rows of X in the plane."""
        return (np.asarray(X, dtype=np.float64) - self.center) @ self.axes

    def covariance(self, covariance):
        """A covariance matrix seen in the plane (2 x 2)."""
        return self.axes.T @ covariance @ self.axes


def _full_covariances(model):
    """Every component's covariance as a (k, d, d) float64 array."""
    covariances = np.asarray(model.covariances_, dtype=np.float64)
    n_components, n_features = model.means_.shape
    if model.covariance_type == "full":
        return covariances
    if model.covariance_type == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features))
    if model.covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return covariances[:, None, None] * np.eye(n_features)


def _subsample(X, *arrays):
    step = max(1, -(-len(X) // _MAX_POINTS))
    return (X[::step],) + tuple(a[::step] for a in arrays)


def draw_gaussian_mixture(ax, model, X, projection=None, title=None):
    """Points coloured by component (strength = probability) and 1-, 2-sigma ellipses."""
    from matplotlib.patches import Ellipse

    resp = model.predict_proba(X).astype(np.float64)  # X as given: keeps column names
    X = np.asarray(X)
    projection = projection or Projection(X)
    X, resp = _subsample(X, resp)
    labels = resp.argmax(axis=1)
    colors = _colors(resp.shape[1])
    point_colors = colors[labels].copy()
    point_colors[:, 3] = 0.15 + 0.85 * resp.max(axis=1)  # soft assignment -> strength
    xy = projection.points(X)
    ax.scatter(xy[:, 0], xy[:, 1], s=6, c=point_colors, linewidths=0)
    means = projection.points(model.means_)
    edge = colors.copy()
    edge[:, :3] *= 0.6  # darker outlines stay visible over the points
    for k, (mean, covariance) in enumerate(zip(means, _full_covariances(model))):
        values, vectors = np.linalg.eigh(projection.covariance(covariance))
        values = np.clip(values, 0, None)
        angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
        for n_sigma, style in ((1, "-"), (2, "--")):
            ax.add_patch(Ellipse(mean, 2 * n_sigma * np.sqrt(values[1]),
                                 2 * n_sigma * np.sqrt(values[0]), angle=angle, fill=False,
                                 edgecolor=edge[k], linestyle=style, linewidth=2, zorder=3))
        ax.plot(*mean, marker="+", color="black", markersize=10, zorder=4)
    ax.set_xlabel(projection.labels[0])
    ax.set_ylabel(projection.labels[1])
    ax.set_title(title or f"GaussianMixture ({model.covariance_type}, "
                          f"{len(model.means_)} components)")


def draw_kmeans(ax, model, X, projection=None, title=None):
    """Points coloured by cluster and the centres."""
    labels = model.predict(X)
    X = np.asarray(X)
    projection = projection or Projection(X)
    X, labels = _subsample(X, labels)
    colors = _colors(len(model.cluster_centers_))
    xy = projection.points(X)
    ax.scatter(xy[:, 0], xy[:, 1], s=6, c=colors[labels], linewidths=0)
    centers = projection.points(model.cluster_centers_)
    ax.scatter(centers[:, 0], centers[:, 1], marker="x", s=80, c="black")
    ax.set_xlabel(projection.labels[0])
    ax.set_ylabel(projection.labels[1])
    ax.set_title(title or f"KMeans ({len(model.cluster_centers_)} clusters)")


def _draw(ax, model, X, projection, title=None):
    if hasattr(model, "cluster_centers_"):
        draw_kmeans(ax, model, X, projection, title)
    else:
        draw_gaussian_mixture(ax, model, X, projection, title)


def plot_fit(model, X, path, title=None):
    """Draw one fitted model on its data and write the picture to ``path`` (PNG)."""
    figure = _figure(6.5, 5.5)
    _draw(figure.add_subplot(), model, X, Projection(np.asarray(X)), title)
    figure.savefig(path, dpi=100)


def plot_side_by_side(models, X, path, titles=None):
    """Draw several fitted models on the same data and plane, side by side."""
    figure = _figure(6 * len(models), 5.5)
    projection = Projection(np.asarray(X))
    axes = figure.subplots(1, len(models), sharex=True, sharey=True, squeeze=False)[0]
    for i, (ax, model) in enumerate(zip(axes, models)):
        _draw(ax, model, X, projection, titles[i] if titles else None)
    figure.savefig(path, dpi=100)


def plot_selection(selection, path):
    """The criterion against n_components, one curve per covariance type, best marked."""
    figure = _figure(6.5, 4.5)
    ax = figure.add_subplot()
    criterion = selection.criterion
    for covariance_type in dict.fromkeys(row["covariance_type"] for row in selection.rows):
        rows = [row for row in selection.rows
                if row["covariance_type"] == covariance_type and not row["failed"]]
        ax.plot([row["n_components"] for row in rows], [row[criterion] for row in rows],
                marker="o", label=covariance_type)
    best = selection.rows[selection.best_index]
    ax.plot(best["n_components"], best[criterion], marker="*", markersize=18, color="black",
            linestyle="none", label="best")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("n_components")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.legend()
    figure.savefig(path, dpi=100)
