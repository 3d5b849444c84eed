"""Measuring what the quantizers and networks do: exact rate–distortion on sources and the Shannon bound
(`ratedistortion`), the eight-family weight-distribution fits (`distributions`), the tests and
intervals the claims use (`statistics`), and classification metrics (`metrics`).
"""
