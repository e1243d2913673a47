"""The training chart `reku train` writes next to the model (matplotlib, `train` extra): the training loss
(smoothed) and the held-out exact match and no-call accuracy at each evaluation, against the step."""


def training_chart(hist, evals, path, title=""):
    """hist: [(step, loss, step accuracy)]; evals: [(step, exact match, no-call accuracy)]; writes a PNG and
    returns the labels of the axes and of the curves drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=100)
    try:
        w = max(1, len(hist) // 200)
        xs = [hist[i][0] for i in range(0, len(hist), w)]
        ys = [sum(h[1] for h in hist[i:i + w]) / len(hist[i:i + w]) for i in range(0, len(hist), w)]
        ax.plot(xs, ys, color="#c03030", lw=1.2, label="training loss (mean of %d steps)" % w)
        ax.set_xlabel("step")
        ax.set_ylabel("loss", color="#c03030")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        handles = ax.get_lines()
        if evals:
            ax2 = ax.twinx()
            ax2.plot([e[0] for e in evals], [e[1] for e in evals], "o-", color="#2860c0", ms=3,
                     label="held-out exact match")
            ax2.plot([e[0] for e in evals], [e[2] for e in evals], "s--", color="#30a050", ms=3,
                     label="held-out no-call accuracy")
            ax2.set_ylabel("held-out accuracy (generated dev set)", color="#2860c0")
            ax2.set_ylim(0, 1)
            handles = handles + ax2.get_lines()
        ax.legend(handles=handles, labels=[h.get_label() for h in handles], loc="center right", fontsize=8)
        if title:
            ax.set_title(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(path)
        return {"axes": [a.get_ylabel() for a in fig.axes] + [ax.get_xlabel()],
                "curves": [h.get_label() for h in handles]}
    finally:
        plt.close(fig)
