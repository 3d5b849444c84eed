"""Measuring what the quantizers and networks do: exact rate–distortion on sources and the Shannon bound
(`ratedistortion`), the eight-family weight-distribution fits (`distributions`), the tests and
intervals the claims use (`statistics`), the window, trend, Holm and change-point tests a run history is
judged by (`regression`), and classification metrics (`metrics`).
"""
