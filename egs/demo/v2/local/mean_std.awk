# Mean and sample standard deviation (divisor n - 1; 0 for one value) of the values of each group, as the
# demo's seed scripts report results (local/run_seeds.sh, local/run_finetune_seeds.sh).
# Input: "<group> <value>" lines (e.g. "plda 15.12", one per seed). Output, a line per group in the order
# the groups first appear: "<group> <n> <mean> <std> <value_1> ... <value_n>" (values as read).
# Usage: ... | awk -f local/mean_std.awk
{
  if (!($1 in count)) order[++groups] = $1
  values[$1, ++count[$1]] = $2
  sum[$1] += $2
  listed[$1] = listed[$1] " " $2
}
END {
  for (g = 1; g <= groups; g++) {
    group = order[g]; n = count[group]; mean = sum[group] / n; squares = 0
    for (i = 1; i <= n; i++) squares += (values[group, i] - mean) ^ 2
    std = (n > 1) ? sqrt(squares / (n - 1)) : 0
    printf "%s %d %.10g %.10g%s\n", group, n, mean, std, listed[group]
  }
}
