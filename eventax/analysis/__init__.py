"""Analysis: loss landscapes (and, later, gradient comparisons and their plots)."""

from .landscape import (
    PCADirections,
    Projection,
    add_scaled,
    pca_directions,
    plot_slice_1d,
    plot_slice_2d,
    project_trajectory,
    random_direction,
    slice_1d,
    slice_2d,
)

__all__ = [
    "PCADirections",
    "Projection",
    "add_scaled",
    "pca_directions",
    "plot_slice_1d",
    "plot_slice_2d",
    "project_trajectory",
    "random_direction",
    "slice_1d",
    "slice_2d",
]
