/* svg_plot.c — line charts as SVG: enough for a training loss curve, nothing more. */
#include "svg_plot.h"

#include <math.h>
#include <stdio.h>

enum { W = 800, H = 480, LEFT = 70, RIGHT = 20, TOP = 40, BOTTOM = 55 };

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about `want` intervals over span. */
static double nice_step(double span, int want) {
    double raw = span / want, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* Escape the few XML specials of a label. */
static void put_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

int svg_plot_write(const char *path, const char *title, const char *xlabel, const char *ylabel,
                   const svg_series *series, size_t n_series) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t s = 0; s < n_series; s++)
        for (size_t i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1;
    double pad = 0.05 * (y1 - y0);
    y0 -= pad, y1 += pad;
    double pw = W - LEFT - RIGHT, ph = H - TOP - BOTTOM;
#define PX(x) (LEFT + ((x) - x0) / (x1 - x0) * pw)
#define PY(y) (TOP + (1.0 - ((y) - y0) / (y1 - y0)) * ph)
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">", W / 2);
    put_text(f, title);
    fputs("</text>\n", f);
    /* grid and tick labels */
    double sx = nice_step(x1 - x0, 8), sy = nice_step(y1 - y0, 6);
    for (double x = ceil(x0 / sx) * sx; x <= x1 + 1e-9 * sx; x += sx)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                PX(x), TOP, PX(x), H - BOTTOM, PX(x), H - BOTTOM + 16, x);
    for (double y = ceil(y0 / sy) * sy; y <= y1 + 1e-9 * sy; y += sy)
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                LEFT, PY(y), W - RIGHT, PY(y), LEFT - 6, PY(y) + 4, y);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n", LEFT, TOP,
            pw, ph);
    fprintf(f, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">", LEFT + pw / 2, H - 14);
    put_text(f, xlabel);
    fprintf(f, "</text>\n<text x=\"18\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.0f)\">",
            TOP + ph / 2, TOP + ph / 2);
    put_text(f, ylabel);
    fputs("</text>\n", f);
    /* series and legend */
    for (size_t s = 0; s < n_series; s++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", series[s].color);
        for (size_t i = 0; i < series[s].n; i++)
            if (isfinite(series[s].x[i]) && isfinite(series[s].y[i]))
                fprintf(f, "%.1f,%.1f ", PX(series[s].x[i]), PY(series[s].y[i]));
        fputs("\"/>\n", f);
        if (series[s].n == 1 || series[s].n < 40) /* few points (validation): mark them */
            for (size_t i = 0; i < series[s].n; i++)
                if (isfinite(series[s].x[i]) && isfinite(series[s].y[i]))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(series[s].x[i]),
                            PY(series[s].y[i]), series[s].color);
        double ly = TOP + 16 + 18.0 * (double)s;
        fprintf(f, "<line x1=\"%d\" y1=\"%.0f\" x2=\"%d\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"2\"/>"
                   "<text x=\"%d\" y=\"%.0f\">", W - RIGHT - 150, ly, W - RIGHT - 128, ly, series[s].color,
                W - RIGHT - 122, ly + 4);
        put_text(f, series[s].label);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
#undef PX
#undef PY
    return fclose(f) == 0 ? 0 : -1;
}
