# variable length, missing values, no labels
@problemName vl
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel false
@data
1.0,?,3.5:4,5,NaN
0.5,-1e3:2.25,1E-2
