/* svg_plot.h — a small line-chart writer for loss curves (used by `msbnb finetune`). */
#ifndef MSBNB_CLI_SVG_PLOT_H
#define MSBNB_CLI_SVG_PLOT_H

#include <stddef.h>

/* One polyline: n points (x[i], y[i]); label shown in the legend; color an SVG color ("#1f77b4"). */
typedef struct svg_series {
    const double *x, *y;
    size_t n;
    const char *label;
    const char *color;
} svg_series;

/* Write an 800x480 SVG chart of the series to path (axes with ticks, grid, legend, title,
 * axis labels). Non-finite points are skipped. Returns 0 on success, -1 on I/O failure. */
int svg_plot_write(const char *path, const char *title, const char *xlabel, const char *ylabel,
                   const svg_series *series, size_t n_series);

#endif
